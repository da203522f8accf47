import { esc } from './svg.js';

/**
 * The start of every page the lab writes (report, demo, kernel matrix, dashboard): the doctype,
 * the html element and the whole head, each style sheet in its own element. The page goes on with <body>.
 */
export function pageHead(title: string, styles: readonly string[]): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
${styles.map((s) => `<style>${s}</style>`).join('\n')}
</head>
`;
}
