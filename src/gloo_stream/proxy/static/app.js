// The chat page, built the way TodoMVC's examples/javascript-es6 builds its app: this module
// makes the model, the views and the controller, gives the controller the model and the
// views, and starts it. Nothing else is created at module level.
//
//   model       model.js         the turns, as plain data (no DOM node), and the answer in
//                                flight; storage.js keeps the turns and settings in this browser;
//                                answer-parts.js: an answer's reasoning, sources, tool calls,
//                                seams, as data
//   views       conversation.js  the list of turns (one turn's DOM is built by turn-view.js and
//                                answer-parts-view.js; markdown.js renders and sanitises
//                                answers with DOMPurify)
//               composer.js      the message box, Send, Stop and the status line
//               settings.js      the Settings panel (its fields are its state)
//   controller  chat.js          send, stop, retry, new chat, resume after a reload: changes
//                                the model and asks the views to draw
//   no DOM      completion.js, sse.js, resume.js: streaming one answer over fetch()
//
// Only the views touch the DOM, and only through the elements they are given (elements.js,
// looked up here once); the controller binds itself to the views' events (bindSend, ...).

import { ChatController } from "./chat.js";
import { Composer } from "./composer.js";
import { ConversationView } from "./conversation.js";
import { apiUrlOf, findElements, upstreamOf } from "./elements.js";
import { ChatModel } from "./model.js";
import { SettingsPanel } from "./settings.js";

const ui = findElements(document);
const composer = new Composer(ui);
const view = new ConversationView(ui, { say: (status) => composer.setStatus(status) });

/** The conversation's data (exported for the browser tests, which read the turns). */
export const model = new ChatModel();

/** The page's controller (exported for the browser tests). */
export const chat = new ChatController({
  model,
  view,
  composer,
  settings: new SettingsPanel(ui),
  apiUrl: apiUrlOf(document),
  upstream: upstreamOf(document),
});

chat.start();
