/* The JavaScript's message catalogue. Chinese is the source language (as in the templates, where
   the msgids are Chinese too); other languages map each Chinese message to their own. The page's
   <html lang> (set by Django from the user's choice) picks the language. */

const CATALOGUE = {
  en: {
    '连接中': 'connecting', '实时': 'live', '重连中': 'reconnecting',
    '单位': 'units', '失联': 'stale',
    '区': 'District', '街道': 'Street', '社区': 'Community', '网格': 'Grid cells',
    '挂账点位': 'Hotspots', '探头': 'Cameras', '执法队员': 'Officers', '车辆': 'Vehicles', '任务': 'Tasks',
    '编号': 'Code', '来源': 'Source', '状态': 'Status', '权属单位': 'Owner', '类别': 'Category',
    '呼号': 'Call sign', '最后定位': 'Last fix', '速度': 'Speed', '执法队员记录': 'Officer', '车辆记录': 'Vehicle',
    '在线': 'online', '在账': 'open', '在岗': 'on duty',
    '秒前': 's ago', '分钟前': 'min ago', '小时前': 'h ago',
    '无结果': 'No results', '搜索失败': 'Search failed',
    '已确认': 'Acknowledged', '确认': 'Acknowledge', '新推送': 'New push',
    '定位已发送': 'Position sent', '定位被拒绝': 'Position rejected', '无法定位': 'Location unavailable',
    '已离线': 'offline', '已连接': 'connected',
    '全市概览': 'City overview', '巡览': 'Tour',
    '推送': 'Push', '任务推送': 'Task', '地图推送': 'Map push',
    '搜索': 'Search', '回到管辖范围': 'Back to my jurisdiction', '显示/隐藏失联单位': 'Show/hide stale units',
    '图层开关': 'Toggle a layer',
    // Tasks
    '待立案': 'reported', '已立案': 'filed', '已派遣': 'dispatched', '已签收': 'accepted', '已到场': 'on site',
    '待核查': 'handled', '核查通过': 'verified', '已结案': 'closed', '已作废': 'cancelled', '已合并': 'merged',
    '上报': 'report', '立案': 'File', '派遣': 'Dispatch', '改派': 'Reassign', '签收': 'Accept', '到场': 'Arrive',
    '处置反馈': 'Feedback', '返工': 'Rework', '结案': 'Close', '延期': 'Extend', '作废': 'Cancel', '合并': 'Merge',
    '升级': 'escalated', '超期': 'overdue', '提醒': 'reminder', '推送已送达': 'push delivered', '推送已确认': 'push acknowledged',
    '全部状态': 'All states', '全部类别': 'All categories', '推荐单位': 'Recommended units', '在办': 'workload',
    '辖区外': 'outside', '无可推荐单位': 'No unit to recommend', '改派理由（未选第一推荐时必填）': 'Override reason (when not the first)',
    '原因': 'Reason', '期限': 'Due', '时间线': 'Timeline', '新建任务': 'New task', '类别': 'Category', '来源': 'Source',
    '描述': 'Description', '问题描述': 'What is the problem', '提交': 'Submit', '取消': 'Cancel',
    '巡查上报': 'patrol report', '12345 诉求': '12345 complaint', '视频/非现场发现': 'video detection', '台账': 'ledger item',
    '上级交办': 'assigned from above', '调度改派': 'reassigned by the dispatcher',
    '在地图中心新建任务': 'New task at the map centre', '派遣给第一推荐单位': 'Assign the first recommendation',
    '下一个任务': 'Next task', '上一个任务': 'Previous task',
    '在办任务': 'Open tasks', '超期任务': 'Overdue tasks', '结案率': 'Closure rate', '按期结案率': 'On-time rate',
    '上周同日': 'last week', '新任务': 'new', '超期巡览': 'Overdue tour',
    '我的任务': 'My tasks', '待发送': 'queued', '拍照': 'Photo', '处置情况': 'What was done', '地图': 'Map',
    '新派遣任务': 'New task', '返工任务': 'Rework', '任务即将到期': 'Task due soon',
    '北': 'N', '东北': 'NE', '东': 'E', '东南': 'SE', '南': 'S', '西南': 'SW', '西': 'W', '西北': 'NW',
    // Problems (the API's detail is added in brackets)
    '任务 {1} 不在您的管辖范围内': 'Task {1} is not in your jurisdiction', '该位置不在您的管辖范围内': 'This place is outside your jurisdiction',
    '此操作需要填写原因': 'This action needs a reason', '未选择第一推荐单位时需要填写改派理由': 'Give a reason when not picking the first recommendation',
    '任务已被他人更新，请刷新后重试': 'Someone changed the task meanwhile: try again', '当前状态不允许此操作': 'Not allowed in the current state',
    '重复提交的请求内容不一致': 'A retried request differs from the first', '请求有误': 'Bad request', '登录已过期，请重新登录': 'Session expired: log in again',
    '无权执行此操作': 'Not allowed', '未找到': 'Not found', '任务状态已变化': 'The task changed meanwhile', '文件过大': 'File too large',
    '文件类型不支持': 'Unsupported file type', '输入有误': 'Invalid input', '请求过于频繁': 'Too many requests', '服务器错误': 'Server error',
    '服务暂不可用': 'Service unavailable', '操作失败': 'Action failed', '当前状态': 'state', '关闭弹窗': 'Close the popup', '快捷键': 'Keyboard shortcuts',
  },
};

const lang = (document.documentElement.lang || 'zh-Hans').toLowerCase().startsWith('en') ? 'en' : 'zh-Hans';

/** Translate a Chinese message; {name} placeholders are filled from vars. */
export function t(message, vars = {}) {
  const text = (CATALOGUE[lang] && CATALOGUE[lang][message]) || message;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function language() { return lang; }

/** "12 秒前" / "12 s ago": how old a fix is. */
export function age(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} ${t('秒前')}`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} ${t('分钟前')}`;
  return `${Math.round(seconds / 3600)} ${t('小时前')}`;
}
