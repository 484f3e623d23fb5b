/**
 * The page's own words in English and Japanese (the server's error messages
 * come localized already, in LocalizedMessage). `{name}` marks a value filled
 * in by `t`. Japanese must have every key English has: a missing one does not
 * compile.
 */
const en = {
  title: "Bazbii heatmap",
  actor: "Actor",
  signIn: "Sign in (development)",
  signedInAs: "Signed in as",
  signOut: "Sign out",
  signInFailed: "Sign-in failed: {reason}",
  signInNeedsProvider: "Sign-in needs a token from your identity provider.",
  heatmap: "Heatmap",
  mapTitle: "Heatmap of posts per H3 cell over a world map",
  resolution: "H3 resolution",
  mapView: "Map view",
  zoomIn: "Zoom in",
  zoomOut: "Zoom out",
  moveWest: "Move west",
  moveNorth: "Move north",
  moveSouth: "Move south",
  moveEast: "Move east",
  chooseCell: "Choose the cell on the map",
  mapHelp:
    "Click the map to choose the cell under the pointer; with the keyboard, Enter chooses the cell at the centre.",
  feedConnecting: "connecting…",
  feedLive: "live",
  feedReconnecting: "reconnecting…",
  feedStopped: "stopped: reload the page to watch again",
  legendEmpty: "No posts in view yet.",
  legendLabel: "Posts per cell in view:",
  onePost: "1 post",
  posts: "{count} posts",
  cellPosts: "{cell}: {posts}",
  post: "Post",
  cell: "Cell:",
  noneChosen: "none chosen",
  selectedCell: "{cell} ({posts})",
  text: "Text",
  postHere: "Post here",
  yourPosts: "Your posts",
  view: "View {cell}",
  delete: "Delete",
  posted: "Posted.",
  postedAfterRetries: "Posted: succeeded on attempt {attempt} after {retries} retries.",
  postedAfterRetry: "Posted: succeeded on attempt {attempt} after 1 retry.",
  deleted: "Deleted.",
  postShown: "“{text}” by {actor} at {cell}",
  code: "Code",
  requestId: "Request id",
  unreachable: "The service cannot be reached right now. Check your connection and try again.",
  retrying: "{message} — retrying (attempt {attempt}) in {seconds} s…",
} as const;

export type LabelKey = keyof typeof en;

const ja: Record<LabelKey, string> = {
  title: "Bazbii ヒートマップ",
  actor: "ユーザー名",
  signIn: "サインイン（開発用）",
  signedInAs: "サインイン中:",
  signOut: "サインアウト",
  signInFailed: "サインインできませんでした: {reason}",
  signInNeedsProvider: "サインインには ID プロバイダーのトークンが必要です。",
  heatmap: "ヒートマップ",
  mapTitle: "世界地図上の H3 セルごとの投稿数ヒートマップ",
  resolution: "H3 解像度",
  mapView: "地図の表示",
  zoomIn: "拡大",
  zoomOut: "縮小",
  moveWest: "西へ移動",
  moveNorth: "北へ移動",
  moveSouth: "南へ移動",
  moveEast: "東へ移動",
  chooseCell: "地図上のセルを選ぶ",
  mapHelp: "地図をクリックするとポインターの下のセルを選びます。キーボードでは Enter で中央のセルを選びます。",
  feedConnecting: "接続中…",
  feedLive: "ライブ",
  feedReconnecting: "再接続中…",
  feedStopped: "停止: ページを再読み込みしてください",
  legendEmpty: "表示範囲に投稿はまだありません。",
  legendLabel: "表示範囲のセルごとの投稿数:",
  onePost: "投稿 1 件",
  posts: "投稿 {count} 件",
  cellPosts: "{cell}: {posts}",
  post: "投稿",
  cell: "セル:",
  noneChosen: "未選択",
  selectedCell: "{cell}（{posts}）",
  text: "本文",
  postHere: "ここに投稿",
  yourPosts: "あなたの投稿",
  view: "{cell} を表示",
  delete: "削除",
  posted: "投稿しました。",
  postedAfterRetries: "投稿しました: {retries} 回の再試行の後、{attempt} 回目で成功しました。",
  postedAfterRetry: "投稿しました: 1 回の再試行の後、{attempt} 回目で成功しました。",
  deleted: "削除しました。",
  postShown: "{actor} さんの投稿「{text}」（{cell}）",
  code: "コード",
  requestId: "リクエスト ID",
  unreachable: "現在サービスに接続できません。接続を確認して、もう一度お試しください。",
  retrying: "{message} — {seconds} 秒後に再試行します（{attempt} 回目）…",
};

/** The browser's language decides, as Accept-Language does for the server's messages. */
export const locale: "en" | "ja" = navigator.language.toLowerCase().startsWith("ja") ? "ja" : "en";

/** The label `key` in the page's language, with `{name}` filled from `values`. */
export function t(key: LabelKey, values: Readonly<Record<string, string | number>> = {}): string {
  const template: string = locale === "ja" ? ja[key] : en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => String(values[name] ?? whole));
}

/** "1 post", "3 posts": the number of posts in the page's language. */
export function postCount(count: number): string {
  return t(count === 1 ? "onePost" : "posts", { count });
}

/**
 * Puts the labels into the static page: `data-label` names the text of an
 * element, `data-label-aria` its accessible name. The HTML holds the English
 * words too, so the page reads well before this runs.
 */
export function labelPage(root: Document = document): void {
  root.documentElement.lang = locale;
  root.title = t("title");
  for (const el of root.querySelectorAll<HTMLElement>("[data-label]")) el.textContent = t(el.dataset.label as LabelKey);
  for (const el of root.querySelectorAll<HTMLElement>("[data-label-aria]")) {
    el.setAttribute("aria-label", t(el.dataset.labelAria as LabelKey));
  }
}
