/* The dispatch API (/api/tasks, README "Dispatch") from the browser: session auth with the CSRF
   token on writes, RFC 9457 problems turned into an error whose message is the problem's detail
   in the page's language. A 401 (or a redirect to the login page) means the session expired:
   `onExpired` hooks run first (e.g. keep a half-written form), then the page goes to the login. */
import {t} from './i18n.js';

const expiredHooks = [];
export function onExpired(hook) { expiredHooks.push(hook); }

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : '';
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(translateProblem(status, problem));
    this.status = status;
    this.problem = problem || {};
  }
}

// The API's details are English sentences; the common ones are said in the dispatcher's words.
const DETAILS = [
  [/^no task (\d+) in your jurisdiction/, '任务 {1} 不在您的管辖范围内'],
  [/outside (your|the) jurisdiction/, '该位置不在您的管辖范围内'],
  [/reason is required|needs a reason|a reason/i, '此操作需要填写原因'],
  [/override/i, '未选择第一推荐单位时需要填写改派理由'],
  [/version|changed since|modified/i, '任务已被他人更新，请刷新后重试'],
  [/not allowed|cannot|may not/i, '当前状态不允许此操作'],
  [/Idempotency-Key/, '重复提交的请求内容不一致'],
];
const STATUS = {400: '请求有误', 401: '登录已过期，请重新登录', 403: '无权执行此操作', 404: '未找到',
                409: '任务状态已变化', 413: '文件过大', 415: '文件类型不支持', 422: '输入有误', 429: '请求过于频繁',
                500: '服务器错误', 503: '服务暂不可用'};

export function translateProblem(status, problem) {
  const detail = (problem && problem.detail) || '';
  for (const [pattern, message] of DETAILS) {
    const match = detail.match(pattern);
    if (match) return t(message).replace('{1}', match[1] || '') + (detail ? ` (${detail})` : '');
  }
  const head = t(STATUS[status] || '操作失败');
  let text = detail ? `${head}：${detail}` : head;
  if (status === 409 && problem && problem.state) text += ` · ${t('当前状态')} ${problem.state}`;
  return text;
}

function expired() {
  for (const hook of expiredHooks) { try { hook(); } catch (error) { console.error(error); } }
  location.assign(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
}

/** fetch JSON from the API; throws ApiError (with the translated detail) for a problem. */
export async function api(method, url, {body, headers = {}, form} = {}) {
  const options = {method, credentials: 'same-origin', headers: {Accept: 'application/json', ...headers}};
  if (method !== 'GET') options.headers['X-CSRFToken'] = csrfToken();
  if (form) options.body = form;
  else if (body !== undefined) { options.body = JSON.stringify(body); options.headers['Content-Type'] = 'application/json'; }
  const response = await fetch(url, options);
  if (response.status === 401 || (response.redirected && response.url.includes('/login/'))) {
    expired();
    throw new ApiError(401, {detail: ''});
  }
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data || {});
  return data;
}

/** Degrees to a compass point, for people: 0 → 北, 90 → 东. */
export function compass(bearing) {
  const names = ['北', '东北', '东', '东南', '南', '西南', '西', '西北'];
  return t(names[Math.round(((bearing % 360) + 360) % 360 / 45) % 8]);
}

export function distanceText(metres) {
  return metres < 1000 ? `${Math.round(metres)} m` : `${(metres / 1000).toFixed(1)} km`;
}

/** Great-circle distance (m) and initial bearing (deg) from one [lon, lat] to another. */
export function distanceBearing(from, to) {
  const rad = Math.PI / 180, [l1, p1] = [from[0] * rad, from[1] * rad], [l2, p2] = [to[0] * rad, to[1] * rad];
  const dp = p2 - p1, dl = l2 - l1;
  const a = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  const distance = 2 * 6371008.8 * Math.asin(Math.sqrt(a));
  const y = Math.sin(dl) * Math.cos(p2), x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
  return {distance, bearing: (Math.atan2(y, x) / rad + 360) % 360};
}

export const STATE_COLOURS = {
  reported: '#f59e0b', filed: '#eab308', dispatched: '#2563eb', accepted: '#0891b2', on_site: '#0d9488',
  handled: '#7c3aed', verified: '#16a34a', closed: '#6b7280', cancelled: '#9ca3af', merged: '#9ca3af',
};
export const STATE_LABELS = {
  reported: '待立案', filed: '已立案', dispatched: '已派遣', accepted: '已签收', on_site: '已到场',
  handled: '待核查', verified: '核查通过', closed: '已结案', cancelled: '已作废', merged: '已合并',
};
export const ACTION_LABELS = {
  create: '上报', file: '立案', dispatch: '派遣', reassign: '改派', accept: '签收', arrive: '到场', feedback: '处置反馈',
  verify: '核查通过', rework: '返工', close: '结案', extend: '延期', cancel: '作废', merge: '合并',
  escalate: '升级', overdue: '超期', remind: '提醒', push_delivered: '推送已送达', push_acknowledged: '推送已确认',
};

// A DOM element with properties, event handlers (on...), dataset and children: the task screens' one builder.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}
