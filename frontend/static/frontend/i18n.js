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
    '图层开关': 'Toggle a layer', '关闭弹窗': 'Close the popup', '快捷键': 'Keyboard shortcuts',
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
