// The little Markdown chat models write: paragraphs, headings, bullet and numbered lists,
// fenced code, `code`, **bold**, and [n] citations. Built as DOM nodes from text, never as
// HTML, so nothing a model (or a passage it quotes) writes can become markup.

import { el } from './util.js';

/**
 * @param {string} text  the whole answer
 * @param {(n: number) => Node|null} cite  the node for citation [n], or null to keep the text
 * @returns {Node[]}
 */
export function renderMarkdown(text, cite) {
  const out = [];
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let list = null;       // the <ul>/<ol> being filled
  let para = [];         // lines of the paragraph being read
  const flushPara = () => {
    if (para.length) out.push(el('p', {}, inline(para.join('\n'), cite)));
    para = [];
  };
  const flushList = () => { if (list) out.push(list); list = null; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*```/.test(line)) {
      flushPara(); flushList();
      const code = [];
      while (++i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i]);
      out.push(el('pre', {}, el('code', {}, code.join('\n'))));
      continue;
    }
    const heading = line.match(/^#{1,6}\s+(.*)$/);
    const bullet = line.match(/^\s*[-*+]\s+(.*)$/);
    const numbered = line.match(/^\s*\d+[.)]\s+(.*)$/);
    if (heading) {
      flushPara(); flushList();
      out.push(el('p', {}, el('strong', {}, inline(heading[1], cite))));
    } else if (bullet || numbered) {
      flushPara();
      const tag = bullet ? 'ul' : 'ol';
      if (!list || list.tagName.toLowerCase() !== tag) { flushList(); list = el(tag); }
      list.append(el('li', {}, inline((bullet || numbered)[1], cite)));
    } else if (!line.trim()) {
      flushPara(); flushList();
    } else {
      flushList();
      para.push(line);
    }
  }
  flushPara(); flushList();
  return out;
}

/** `code`, **bold** and [n] within one block. */
function inline(text, cite) {
  const nodes = [];
  for (const part of text.split(/(`[^`\n]+`|\*\*[^*\n]+\*\*|\[\d+\])/)) {
    if (!part) continue;
    if (part.startsWith('`') && part.endsWith('`') && part.length > 2) nodes.push(el('code', {}, part.slice(1, -1)));
    else if (part.startsWith('**') && part.endsWith('**') && part.length > 4) nodes.push(el('strong', {}, part.slice(2, -2)));
    else if (/^\[\d+\]$/.test(part)) nodes.push(cite(Number(part.slice(1, -1))) || part);
    else nodes.push(part);
  }
  return nodes;
}
