// Markdown for the chat page: rendered with marked, sanitised with DOMPurify before it touches
// the DOM, and rendered incrementally while an answer streams.
//
// Why incremental: re-parsing the whole answer on every token (the tutorial's pattern) makes a
// long answer cost O(n^2). StreamingMarkdown splits the text at the last blank line outside a
// code fence: everything before it is finished blocks, rendered once and never touched again;
// only the open block after it is re-rendered, at most once per animation frame. The work per
// frame is bounded by the size of one block, not by the length of the answer.
//
// While it streams, and when it was cut, the open block goes through closeOpenInline(): an
// unterminated "**bold", "`code" or "[link" renders closed instead of flashing raw markers.

import { closeOpenInline } from "./partial-markdown.js";

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const BLANK = /^[ \t\r]*$/;
// A line after a blank line starts a new top-level block when it is not indented (indented
// lines continue a list item or are indented code) and not a list item (splitting between the
// items of a loose list would turn one list into several).
const NEW_BLOCK = /^(?![ \t])(?![-*+][ \t]|\d{1,9}[.)][ \t])\S/;

function escapeHtml(text) {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Turns markdown into a sanitised DocumentFragment: the only way markup reaches the page. */
export class MarkdownFormatter {
  /**
   * @param {any} markedLib the `marked` UMD global
   * @param {any} purify the `DOMPurify` global
   */
  constructor(markedLib, purify) {
    // An instance of our own, so options never leak into (or from) the global marked.
    this._marked = new markedLib.Marked({ gfm: true, breaks: false, async: false });
    // Raw HTML in model output is shown as text, never interpreted: a model explaining HTML
    // should display its tags, and it takes away the largest XSS surface before DOMPurify
    // (which still sanitises everything, e.g. javascript: links).
    this._marked.use({ renderer: { html: ({ text }) => escapeHtml(text) } });
    this._purify = purify;
    if (!purify.__glooHooked) {
      purify.addHook("afterSanitizeAttributes", (node) => {
        if (node.tagName === "A" && node.hasAttribute("href")) {
          node.setAttribute("target", "_blank");
          node.setAttribute("rel", "noopener noreferrer nofollow");
        }
      });
      purify.__glooHooked = true;
    }
  }

  /** Sanitised HTML string (for tests and the benchmark's naive renderer). */
  html(markdown) {
    return this._purify.sanitize(this._marked.parse(markdown), SANITIZE);
  }

  /** Sanitised nodes ready to insert, with a copy button on each code block. */
  fragment(markdown) {
    const fragment = this._purify.sanitize(this._marked.parse(markdown), {
      ...SANITIZE,
      RETURN_DOM_FRAGMENT: true,
    });
    for (const pre of fragment.querySelectorAll("pre")) decorateCodeBlock(pre);
    return fragment;
  }
}

const SANITIZE = {
  // Model output has no business with forms, media or styles; images stay (they are
  // blocked from loading remote content by the page's Content-Security-Policy).
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "video", "audio"],
  FORBID_ATTR: ["style"],
};

function decorateCodeBlock(pre) {
  const wrapper = document.createElement("div");
  wrapper.className = "codeblock";
  const bar = document.createElement("div");
  bar.className = "codeblock-bar";
  const code = pre.querySelector("code");
  const language = code && /language-(\S+)/.exec(code.className);
  const label = document.createElement("span");
  label.className = "codeblock-lang";
  label.textContent = language ? language[1] : "code";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy-code";
  button.textContent = "Copy";
  button.setAttribute("aria-label", `Copy ${label.textContent} code`);
  bar.append(label, button);
  pre.replaceWith(wrapper);
  wrapper.append(bar, pre);
}

/** Renders a growing markdown text into an element, touching only the part that changed. */
export class StreamingMarkdown {
  /**
   * @param {HTMLElement} element where the answer goes (emptied first)
   * @param {MarkdownFormatter} formatter
   * @param {{schedule?: (fn: () => void) => void}} options `schedule` defaults to rAF
   */
  constructor(element, formatter, options = {}) {
    this.element = element;
    this.formatter = formatter;
    this._schedule = options.schedule ?? ((fn) => requestAnimationFrame(fn));
    this._finished = []; // markdown of the blocks already rendered for good
    this._tail = ""; // markdown of the open part, re-rendered as it grows
    // Scanner state over _tail: how far whole lines were scanned, whether that point is inside
    // a code fence (and which), whether the last scanned line was blank, and the offset of
    // the latest safe split point (0: none yet).
    this._scanned = 0;
    this._fence = null;
    this._afterBlank = false;
    this._split = 0;
    this._dirty = false;
    this._adjusted = false; // the open part on screen differs from its text (see _visibleTail)
    this._scheduled = false;
    this.renders = 0; // frames that did work (for tests and the benchmark)
    this._tailElement = document.createElement("div");
    this._tailElement.className = "md-part md-open";
    element.replaceChildren(this._tailElement);
  }

  /** The whole markdown text so far. */
  get text() {
    return this._finished.join("") + this._tail;
  }

  /** Add streamed text; it is rendered on the next animation frame. */
  append(text) {
    if (!text) return;
    this._tail += text;
    this._dirty = true;
    if (!this._scheduled) {
      this._scheduled = true;
      this._schedule(() => {
        this._scheduled = false;
        this.flush();
      });
    }
  }

  /**
   * Render now whatever changed: called per frame, and with `final` once the answer ended.
   * @param {boolean} final render the text as it is: the last line even if it is only markup
   * @param {{cut?: boolean}} options `cut`: the answer was stopped or cut off, so markup it
   *   left open is closed, as while it streamed
   */
  flush(final = false, { cut = false } = {}) {
    if (!this._dirty && !(final && this._adjusted)) return;
    this._dirty = false;
    this.renders += 1;
    this._scan();
    if (this._split > 0) {
      // Seal the finished blocks: render them once, insert them before the open part.
      const sealed = this._tail.slice(0, this._split);
      this._tail = this._tail.slice(this._split);
      this._scanned -= this._split;
      this._split = 0;
      this._finished.push(sealed);
      const part = document.createElement("div");
      part.className = "md-part";
      part.append(this.formatter.fragment(sealed));
      this.element.insertBefore(part, this._tailElement);
    }
    let shown = this._visibleTail();
    if (final) shown = cut ? closeOpenInline(this._tail) : this._tail;
    this._tailElement.replaceChildren(this.formatter.fragment(shown));
  }

  /**
   * The open part minus an unfinished last line that has no letters or digits yet ("- **",
   * "```", "#"): rendered alone it flashes as an empty bullet or a stray rule. Inline markup
   * left open is closed.
   */
  _visibleTail() {
    const tail = this._tail;
    const lineStart = tail.lastIndexOf("\n") + 1;
    const last = tail.slice(lineStart);
    const heldBack = last !== "" && !/[\p{L}\p{N}]/u.test(last);
    const visible = closeOpenInline(heldBack ? tail.slice(0, lineStart) : tail);
    this._adjusted = visible !== tail;
    return visible;
  }

  /** Scan the new whole lines of the tail for fences and block boundaries. */
  _scan() {
    const tail = this._tail;
    let start = this._scanned;
    for (let end = tail.indexOf("\n", start); end >= 0; end = tail.indexOf("\n", start)) {
      const line = tail.slice(start, end);
      if (this._fence !== null) {
        if (closesFence(line, this._fence)) this._fence = null;
        this._afterBlank = false;
      } else if (BLANK.test(line)) {
        this._afterBlank = true;
      } else {
        if (this._afterBlank && NEW_BLOCK.test(line)) this._split = start;
        const open = FENCE_OPEN.exec(line);
        if (open) this._fence = open[1];
        this._afterBlank = false;
      }
      start = end + 1;
    }
    this._scanned = start;
  }
}

function closesFence(line, fence) {
  // A closing fence: same character, at least as long, nothing after it but spaces.
  const match = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line.replace(/\r$/, ""));
  return match !== null && match[1][0] === fence[0] && match[1].length >= fence.length;
}
