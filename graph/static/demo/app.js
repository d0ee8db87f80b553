// genhub demo page: sign in, start generations, and watch the history grid update live.
//
// No build step and no dependencies: GraphQL over HTTP with fetch, uploads with the
// GraphQL multipart request spec, and a small graphql-transport-ws client (below) for
// the `myGenerationEvents` and `creditsChanged` subscriptions, with a GraphQL over
// Server-Sent Events client when the WebSocket cannot connect (`?transport=sse` forces it). Every piece of data reaches
// the DOM through textContent or attributes, never as markup: prompts are user input.
"use strict";

// ---------------------------------------------------------------- operations

const AUTH_FRAGMENT = `fragment Auth on AuthResult {
  __typename
  ... on AuthPayload { accessToken refreshToken expiresIn user { id email } }
  ... on Error { code message }
  ... on InvalidInput { fields { field message } }
}`;
// What a tile and the viewer show; every query and event of a generation selects it, so
// whatever arrives (a page, an event, a start) replaces the tile's data whole.
const TILE_FRAGMENT = `fragment Tile on Generation {
  id status progress prompt createdAt updatedAt
  error { code message }
  model { id name kind }
  outputs {
    id contentType size width height durationSeconds thumbnailStatus url
    thumbnail { id width height url }
  }
}`;
const LOGIN = `mutation Login($input: LoginInput!) {
  login(input: $input) { ...Auth }
}
${AUTH_FRAGMENT}`;
const REGISTER = `mutation Register($input: RegisterInput!) {
  register(input: $input) { ...Auth }
}
${AUTH_FRAGMENT}`;
const REQUEST_RESET = `mutation RequestReset($email: String!) {
  requestPasswordReset(email: $email) { __typename ... on Error { code message } }
}`;
const RESET_PASSWORD = `mutation ResetPassword($input: ResetPasswordInput!) {
  resetPassword(input: $input) {
    __typename
    ... on ResetPasswordSuccess { email }
    ... on Error { code message }
  }
}`;
const REFRESH = `mutation Refresh($refreshToken: String!) {
  refreshToken(refreshToken: $refreshToken) { ...Auth }
}
${AUTH_FRAGMENT}`;
const START = `query Start {
  me { id email }
  credits { balance reserved available }
  models { id slug name kind costCredits capabilities }
}`;
const CREDITS = `query Credits { credits { balance reserved available } }`;
const LOGOUT = `mutation Logout { logout { __typename } }`;
const HISTORY = `query History($first: Int!, $after: String) {
  generations(first: $first, after: $after) {
    edges { node { ...Tile } }
    pageInfo { hasNextPage endCursor }
  }
}
${TILE_FRAGMENT}`;
const READ = `query Read($id: ID!) {
  generation(id: $id) { ...Tile }
}
${TILE_FRAGMENT}`;
const UPLOAD = `mutation Upload($file: Upload!) {
  uploadChunk(file: $file) {
    __typename
    ... on UploadChunkSuccess { chunk { id filename size status } }
    ... on Error { code message }
  }
}`;
const GENERATE = `mutation Generate($input: GenerateInput!) {
  generate(input: $input) {
    __typename
    ... on GenerateSuccess { generation { ...Tile } }
    ... on Error { code message }
    ... on InsufficientCredits { required available }
  }
}
${TILE_FRAGMENT}`;
const CANCEL = `mutation Cancel($id: ID!) {
  cancelGeneration(id: $id) {
    __typename
    ... on Error { code message }
  }
}`;
const EVENTS = `subscription Events {
  myGenerationEvents {
    previousStatus
    at
    generation { ...Tile }
  }
}
${TILE_FRAGMENT}`;
const WATCH_CREDITS = `subscription Credits { creditsChanged { balance reserved available } }`;

const PAGE_SIZE = 24;
const FINAL = new Set(["SUCCEEDED", "FAILED", "CANCELED", "EXPIRED"]);
const SESSION_KEY = "genhub-demo-session";

// ---------------------------------------------------------------- GraphQL over HTTP

class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

const api = {
  url: new URL("/graphql", location.href).toString(),
  session: null, // {accessToken, refreshToken, user}
  refreshing: null,

  headers(extra) {
    const headers = { Accept: "application/graphql-response+json, application/json", ...extra };
    if (this.session) headers.Authorization = `Bearer ${this.session.accessToken}`;
    return headers;
  },

  async post(body, headers, retry = true) {
    const response = await fetch(this.url, { method: "POST", headers: this.headers(headers), body });
    const payload = await response.json().catch(() => ({ errors: [{ message: `HTTP ${response.status}` }] }));
    const errors = payload.errors || [];
    if (retry && this.session && errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
      // The access token is short-lived: trade the refresh token for a new one, once.
      if (await this.refresh()) return this.post(body, headers, false);
    }
    if (errors.length) throw new GraphQLError(errors);
    return payload.data;
  },

  request(query, variables = {}, retry = true) {
    return this.post(JSON.stringify({ query, variables }), { "Content-Type": "application/json" }, retry);
  },

  // GraphQL multipart request spec: operations + map + one file part. The custom header
  // makes this a non-simple CORS request (the server refuses multipart without it: CSRF).
  upload(file) {
    const form = new FormData();
    form.append("operations", JSON.stringify({ query: UPLOAD, variables: { file: null } }));
    form.append("map", JSON.stringify({ 0: ["variables.file"] }));
    form.append("0", file, file.name);
    return this.post(form, { "GraphQL-Require-Preflight": "1" });
  },

  refresh() {
    if (!this.refreshing) {
      const token = this.session?.refreshToken;
      this.refreshing = (async () => {
        try {
          const data = await this.request(REFRESH, { refreshToken: token }, false);
          if (data.refreshToken.__typename !== "AuthPayload") throw new Error(data.refreshToken.message);
          setSession(data.refreshToken);
          return true;
        } catch {
          signOut("Your session has expired; sign in again.");
          return false;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  },
};

// ---------------------------------------------------------------- graphql-transport-ws

// A minimal client of https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md:
// connection_init carries the token, every subscription is re-sent after a reconnect, pings
// get pongs. Events sent while the socket was down are gone: `onReconnect` lets the page
// read the current state again.
class SubscriptionClient {
  constructor(url, { connectionParams, onState, onUnauthorized, onReconnect, onUnavailable }) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onUnavailable = onUnavailable;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.onReconnect = onReconnect;
    this.ws = null;
    this.acknowledged = false;
    this.everAcknowledged = false;
    this.operations = new Map(); // id -> {query, variables, sink}
    this.nextId = 1;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.closed = false;
  }

  subscribe(query, variables, sink) {
    const id = String(this.nextId++);
    this.operations.set(id, { query, variables, sink });
    if (this.acknowledged) this.start(id);
    else this.connect();
    return () => this.stop(id);
  }

  connect() {
    if (this.ws || this.closed || this.reconnectTimer) return;
    const ws = new WebSocket(this.url, "graphql-transport-ws");
    this.ws = ws;
    this.onState("connecting");
    ws.onopen = () => this.send({ type: "connection_init", payload: this.connectionParams() });
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.closedBy(event);
  }

  receive(message) {
    const operation = this.operations.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.attempt = 0;
        this.onState("open");
        for (const id of this.operations.keys()) this.start(id);
        if (this.everAcknowledged) this.onReconnect?.();
        this.everAcknowledged = true;
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        operation?.sink.next(message.payload);
        break;
      case "error":
        this.operations.delete(message.id);
        operation?.sink.error(new GraphQLError(message.payload));
        break;
      case "complete":
        this.operations.delete(message.id);
        operation?.sink.complete?.();
        break;
    }
  }

  async closedBy(event) {
    this.ws = null;
    this.acknowledged = false;
    this.onState("closed");
    if (this.closed) return;
    // 4401: the access token expired. Refresh it and reconnect at once (a few times at
    // most, in case the server keeps refusing the new one).
    if (event.code === 4401 && this.attempt++ < 3 && (await this.onUnauthorized())) {
      if (this.operations.size > 0 && !this.closed) this.connect();
      return;
    }
    if (event.code === 4400 || event.code === 4401 || event.code === 4403) {
      for (const { sink } of this.operations.values()) sink.error(new Error(event.reason || "Subscription refused"));
      this.operations.clear();
      return;
    }
    if (this.operations.size === 0) return;
    // Never acknowledged at all (a proxy that drops WebSockets, a blocked port): hand the
    // subscriptions to another transport if the page offers one.
    if (!this.everAcknowledged && this.onUnavailable) {
      const operations = [...this.operations.values()];
      this.close();
      this.onUnavailable(operations);
      return;
    }
    // Back off 0.5 s, 1 s, 2 s ... up to 10 s, with jitter so replicas are not hit at once.
    const delay = Math.min(10000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  start(id) {
    const { query, variables } = this.operations.get(id);
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  stop(id) {
    if (this.operations.delete(id) && this.acknowledged) this.send({ id, type: "complete" });
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.operations.clear();
    this.ws?.close(1000, "bye");
  }
}

// ---------------------------------------------------------------- GraphQL over SSE

// A minimal client of the "distinct connections" mode of
// https://github.com/enisdenjo/graphql-sse/blob/master/PROTOCOL.md: one POST with
// `Accept: text/event-stream` per subscription, `next` and `complete` events, `:` comments
// to keep it alive. A stream that ends without `complete` (a server restart, the network) is
// opened again after a back-off; a 401 (or an UNAUTHENTICATED error) refreshes the token first.
class SseSubscriptionClient {
  constructor(url, { headers, onState, onUnauthorized, onReconnect }) {
    this.url = url;
    this.headers = headers;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.onReconnect = onReconnect;
    this.operations = new Map(); // id -> {query, variables, sink, controller}
    this.nextId = 1;
    this.closed = false;
  }

  subscribe(query, variables, sink) {
    const id = String(this.nextId++);
    this.operations.set(id, { query, variables, sink, controller: null });
    this.run(id, 0, false);
    return () => this.stop(id);
  }

  async run(id, attempt, reconnecting) {
    const operation = this.operations.get(id);
    if (!operation || this.closed) return;
    const controller = new AbortController();
    operation.controller = controller;
    let outcome;
    try {
      outcome = await this.stream(operation, controller.signal, reconnecting);
    } catch (error) {
      if (controller.signal.aborted || this.closed) return;
      outcome = { retry: true, error };
    }
    if (!this.operations.has(id) || this.closed) return;
    if (outcome.unauthorized && attempt < 3 && (await this.onUnauthorized())) {
      this.run(id, attempt + 1, true);
      return;
    }
    if (outcome.complete) {
      this.operations.delete(id);
      operation.sink.complete?.();
      return;
    }
    if (!outcome.retry || outcome.unauthorized) {
      this.operations.delete(id);
      operation.sink.error(outcome.error || new Error("Subscription refused"));
      return;
    }
    this.onState("connecting");
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    setTimeout(() => this.run(id, attempt + 1, true), delay);
  }

  async stream(operation, signal, reconnecting) {
    const response = await fetch(this.url, {
      method: "POST",
      headers: { ...this.headers(), "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ query: operation.query, variables: operation.variables }),
      signal,
    });
    if (response.status === 401) return { unauthorized: true, error: new Error("Unauthorized") };
    if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
      const body = await response.json().catch(() => ({}));
      const message = body.errors?.[0]?.message || `HTTP ${response.status}`;
      return { retry: response.status >= 500 || response.status === 429, error: new Error(message) };
    }
    this.onState("open");
    if (reconnecting) this.onReconnect?.();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { retry: true };
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = { event: "", data: [] };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue; // keep-alive comment
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") message.event = text;
          if (field === "data") message.data.push(text);
        }
        if (message.event === "complete") {
          reader.cancel().catch(() => {});
          return { complete: true };
        }
        if (message.event !== "next") continue;
        const result = JSON.parse(message.data.join("\n"));
        if (result.errors?.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
          reader.cancel().catch(() => {});
          return { unauthorized: true, error: new Error(result.errors[0].message) };
        }
        operation.sink.next(result);
      }
    }
  }

  stop(id) {
    this.operations.get(id)?.controller?.abort();
    this.operations.delete(id);
  }

  close() {
    this.closed = true;
    for (const { controller } of this.operations.values()) controller?.abort();
    this.operations.clear();
    this.onState("closed");
  }
}

// ---------------------------------------------------------------- page state

const $ = (id) => document.getElementById(id);
let socket = null;
const models = new Map(); // id -> AiModel

function show(element, visible) {
  element.hidden = !visible;
}

function setError(id, message) {
  $(id).textContent = message || "";
}

function failureMessage(result) {
  if (result.__typename === "InsufficientCredits") {
    const email = api.session?.user?.email || "you@example.com";
    return `${result.message} An operator can add some: genhub grant-credits --email ${email} --amount 100 --reason demo`;
  }
  if (result.fields?.length) return result.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
  return result.message || result.__typename;
}

function setSession(payload) {
  const user = payload.user || api.session?.user;
  api.session = { accessToken: payload.accessToken, refreshToken: payload.refreshToken, user };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(api.session));
}

function showCredits(credits) {
  $("credits-available").textContent = credits.available;
  $("credits-detail").textContent = `(${credits.balance} / ${credits.reserved} reserved)`;
}

function refreshCredits() {
  // creditsChanged pushes the balance too; this read covers a socket that was reconnecting.
  api.request(CREDITS).then((data) => showCredits(data.credits)).catch(() => {});
}

function announce(message) {
  $("announce").textContent = message;
}

function wsUrl() {
  const url = new URL(api.url);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

async function enter() {
  const data = await api.request(START);
  $("user-email").textContent = data.me.email;
  showCredits(data.credits);
  const select = $("model");
  models.clear();
  select.replaceChildren(
    ...data.models.map((model) => {
      models.set(model.id, model);
      const option = new Option(`${model.name} (${model.kind.toLowerCase()}, ${model.costCredits} credits)`, model.id);
      option.dataset.cost = model.costCredits;
      return option;
    }),
  );
  select.dispatchEvent(new Event("change"));
  show($("signin-card"), false);
  show($("account"), true);
  show($("generate-card"), true);
  show($("history-card"), true);

  socket = openSubscriptions();
  socket.subscribe(WATCH_CREDITS, {}, creditsSink);
  // Subscribe before the first page is read, so nothing that happens in between is missed.
  followEvents(socket, 0);
  await gallery.loadFirst();
}

const creditsSink = {
  next: (result) => result.data && showCredits(result.data.creditsChanged),
  error: (error) => console.warn("creditsChanged:", error),
};

// The WebSocket first; Server-Sent Events when it cannot connect, or when the page's URL
// says `?transport=sse`. `#socket[data-transport]` shows which one carries the updates.
function openSubscriptions() {
  const onState = (state) => ($("socket").dataset.state = state);
  if (new URLSearchParams(location.search).get("transport") === "sse") return openSse(onState);
  $("socket").dataset.transport = "websocket";
  return new SubscriptionClient(wsUrl(), {
    connectionParams: () => ({ Authorization: `Bearer ${api.session.accessToken}` }),
    onState,
    onUnauthorized: () => api.refresh(),
    onReconnect: () => gallery.resync(),
    onUnavailable: (operations) => {
      console.info("WebSocket unavailable: live updates fall back to Server-Sent Events");
      const client = openSse(onState);
      socket.replacedBy = client;
      socket = client;
      for (const { query, variables, sink } of operations) client.subscribe(query, variables, sink);
      gallery.resync();
    },
  });
}

function openSse(onState) {
  $("socket").dataset.transport = "sse";
  return new SseSubscriptionClient(api.url, {
    headers: () => ({ Authorization: `Bearer ${api.session.accessToken}` }),
    onState,
    onUnauthorized: () => api.refresh(),
    onReconnect: () => gallery.resync(),
  });
}

function followEvents(client, attempt) {
  client.subscribe(EVENTS, {}, {
    next: (result) => {
      if (result.errors) setError("history-error", result.errors.map((e) => e.message).join("; "));
      if (result.data) gallery.event(result.data.myGenerationEvents);
    },
    error: (error) => setError("history-error", `Live updates stopped: ${error.message}`),
    // The stream has no end of its own: if the server ended it anyway, follow again and
    // read back what happened in between (a few times, further apart each time).
    complete: () => {
      if (attempt >= 5) return;
      setTimeout(() => {
        let current = client;
        while (current.replacedBy) current = current.replacedBy; // the WebSocket fell back to SSE
        if (socket !== current) return;
        followEvents(current, attempt + 1);
        gallery.resync();
      }, 1000 * (attempt + 1));
    },
  });
}

function signOut(message) {
  socket?.close();
  socket = null;
  api.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  viewer.close();
  gallery.clear();
  show($("account"), false);
  show($("generate-card"), false);
  show($("history-card"), false);
  show($("signin-card"), true);
  setError("signin-error", message);
}

async function authenticate(operation) {
  setError("signin-error", "");
  const input = { email: $("email").value.trim(), password: $("password").value };
  try {
    const data = await api.request(operation, { input });
    const result = data.login || data.register;
    if (result.__typename !== "AuthPayload") {
      setError("signin-error", failureMessage(result));
      return;
    }
    setSession(result);
    await enter();
  } catch (error) {
    setError("signin-error", error.message);
  }
}

// ---------------------------------------------------------------- model parameters

// capabilities.params: {name: {type: int|number|string|bool|enum, min, max, values, default}}
function paramInput(name, spec) {
  const type = spec.type || "string";
  let input;
  if (type === "enum") {
    input = document.createElement("select");
    input.append(...(spec.values || []).map((value) => new Option(String(value), String(value))));
  } else {
    input = document.createElement("input");
    input.type = { int: "number", number: "number", bool: "checkbox" }[type] || "text";
    if (type === "int" || type === "number") {
      input.step = type === "int" ? "1" : "any";
      if (spec.min !== undefined) input.min = String(spec.min);
      if (spec.max !== undefined) input.max = String(spec.max);
    }
  }
  if (type === "bool") input.checked = Boolean(spec.default);
  else if (spec.default !== undefined) input.value = String(spec.default);
  input.dataset.param = name;
  const label = document.createElement("label");
  label.append(name, input);
  return label;
}

function renderParams() {
  const model = models.get($("model").value);
  const specs = model?.capabilities?.params || {};
  const fields = Object.entries(specs).map(([name, spec]) => paramInput(name, spec));
  $("params").replaceChildren(...fields);
  show($("params"), fields.length > 0);
  // A model that takes no input files gets none.
  $("file").disabled = (model?.capabilities?.maxInputs ?? 0) === 0;
  const option = $("model").selectedOptions[0];
  $("cost").textContent = option ? `costs ${option.dataset.cost} credits` : "";
}

function readParams() {
  const specs = models.get($("model").value)?.capabilities?.params || {};
  const params = {};
  for (const input of $("params").querySelectorAll("[data-param]")) {
    const spec = specs[input.dataset.param] || {};
    const type = spec.type || "string";
    // A field left empty is a parameter not given (the model's default applies), not 0 or "".
    if (type !== "bool" && input.value === "") continue;
    if (type === "bool") params[input.dataset.param] = input.checked;
    else if (type === "int" || type === "number") params[input.dataset.param] = Number(input.value);
    else if (type === "enum") params[input.dataset.param] = spec.values.find((v) => String(v) === input.value);
    else params[input.dataset.param] = input.value;
  }
  return params;
}

// ---------------------------------------------------------------- snapshots of a generation

const STATUS_WORDS = {
  QUEUED: "Queued",
  SUBMITTING: "Submitting",
  PROCESSING: "Generating",
  SUCCEEDED: "Done",
  FAILED: "Failed",
  CANCELED: "Canceled",
  EXPIRED: "Expired",
};
const STATUS_RANK = { QUEUED: 0, SUBMITTING: 1, PROCESSING: 2 }; // a final status ranks 3
const THUMBNAIL_RANK = { PENDING: 1, READY: 2, FAILED: 2 };
// A tile that has not settled and heard nothing for this long is read once, then after
// twice as long, and so on: an event dropped for a lagging subscriber would otherwise
// leave it spinning for good.
const QUIET_MS = 45_000;
const QUIET_MAX_MS = 600_000;

// Which of two snapshots of one generation is newer. Snapshots can arrive out of order (a
// page read in flight while events arrive, the generate result racing its own first event):
// the row's updatedAt decides, then how far it got (status, progress, thumbnails), since a
// thumbnail may be announced without the generation's row changing.
function version(g) {
  const thumbnails = (g.outputs || []).reduce((sum, o) => sum + (THUMBNAIL_RANK[o.thumbnailStatus] ?? 0), 0);
  return [Date.parse(g.updatedAt) || 0, FINAL.has(g.status) ? 3 : STATUS_RANK[g.status] ?? 0, g.progress ?? 0, thumbnails];
}

function compareVersions(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** Nothing more will happen to it: a final status, and no thumbnail still being made. */
function settled(g) {
  return FINAL.has(g.status) && (g.outputs || []).every((o) => o.thumbnailStatus !== "PENDING");
}

/** newest first: createdAt, then id (two generations may share a timestamp). */
function newerFirst(a, b) {
  const at = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  return at !== 0 ? at : a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function isVideo(output) {
  return output.contentType.startsWith("video/");
}

/** none (no output yet) | pending | ready | failed | original (stored before thumbnails existed) */
function thumbnailState(g) {
  const output = g.outputs?.[0];
  if (g.status !== "SUCCEEDED" || !output) return "none";
  if (output.thumbnail?.url) return "ready";
  if (output.thumbnailStatus === "PENDING") return "pending";
  if (output.thumbnailStatus == null) return "original";
  return "failed";
}

function formatDuration(seconds) {
  if (typeof seconds !== "number" || !(seconds >= 0)) return "";
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function formatWhen(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const today = new Date().toDateString() === when.toDateString();
  return today
    ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : when.toLocaleDateString([], { month: "short", day: "numeric" });
}

function formatBytes(size) {
  if (typeof size !== "number") return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** The prompt as alt text: all of it for a short one, its start for a long one. */
function altText(prompt) {
  const text = (prompt || "").trim() || "generated image";
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- a tile of the grid

class Tile {
  constructor(id) {
    this.id = id;
    this.generation = null;
    this.events = []; // what this page saw happen to it, oldest first (the viewer lists them)
    this.source = null; // how the data on screen arrived: start | list | live | read
    this.mediaKey = null; // what the media box shows, so an update redraws only what changed
    this.retriedImage = false;
    this.lastChange = Date.now();
    this.quietMs = QUIET_MS;
    this.build();
  }

  build() {
    this.item = element("li", "tile");
    this.item.dataset.id = this.id;
    this.open = element("button", "tile-open");
    this.open.type = "button";
    this.open.addEventListener("click", () => viewer.open(this));
    this.media = element("div", "tile-media");
    this.overlay = element("div", "tile-overlay");
    this.label = element("span", "tile-label");
    this.bar = element("div", "progress");
    this.bar.setAttribute("role", "progressbar");
    this.bar.setAttribute("aria-valuemin", "0");
    this.bar.setAttribute("aria-valuemax", "100");
    this.fill = element("div", "progress-fill");
    this.bar.append(this.fill);
    this.overlay.append(this.label, this.bar);
    this.badge = element("span", "badge");
    this.open.append(this.media, this.overlay, this.badge);

    const caption = element("div", "tile-caption");
    this.prompt = element("p", "tile-prompt");
    const meta = element("div", "tile-meta");
    this.chip = element("span", "status");
    this.when = element("time", "muted");
    this.cancel = element("button", "link tile-cancel", "Cancel");
    this.cancel.type = "button";
    this.cancel.addEventListener("click", () => cancelGeneration(this.id, "history-error"));
    meta.append(this.chip, this.when, this.cancel);
    caption.append(this.prompt, meta);
    this.item.append(this.open, caption);
  }

  /** Take a snapshot unless an older one; returns the status it replaced, or undefined when ignored. */
  update(generation, source, event) {
    const before = this.generation;
    const order = before ? compareVersions(version(generation), version(before)) : 1;
    if (order < 0) return undefined;
    this.generation = generation;
    if (order > 0) {
      this.source = source;
      this.lastChange = Date.now();
      this.quietMs = QUIET_MS;
      this.events.push({
        at: event?.at || generation.updatedAt,
        previousStatus: event ? event.previousStatus : before?.status ?? null,
        status: generation.status,
        progress: generation.progress,
        thumbnail: thumbnailState(generation),
        source,
      });
    }
    // An equal snapshot still brings freshly signed URLs: kept for the next redraw.
    this.render();
    return before?.status ?? null;
  }

  render() {
    const g = this.generation;
    const output = g.outputs?.[0];
    const active = !FINAL.has(g.status);
    const video = output ? isVideo(output) : g.model?.kind === "VIDEO";
    const percent = Math.round((g.progress ?? 0) * 100);
    const word = STATUS_WORDS[g.status] || g.status;

    this.item.dataset.status = g.status;
    this.item.dataset.thumbnail = thumbnailState(g);
    this.item.dataset.source = this.source;
    this.item.dataset.kind = video ? "video" : "image";
    this.prompt.textContent = g.prompt;
    this.prompt.title = g.prompt;
    this.chip.textContent = word;
    this.chip.dataset.status = g.status;
    this.when.dateTime = g.createdAt;
    this.when.textContent = formatWhen(g.createdAt);
    this.cancel.hidden = !active;

    this.overlay.hidden = !active;
    this.label.textContent = g.status === "PROCESSING" ? `${word} ${percent}%` : `${word}…`;
    this.bar.setAttribute("aria-valuenow", String(percent));
    this.fill.style.width = `${percent}%`;

    const duration = video && output ? formatDuration(output.durationSeconds) : "";
    const more = (g.outputs?.length || 0) > 1 ? `+${g.outputs.length - 1}` : "";
    this.badge.textContent = video ? `▶ ${duration || "video"}` : more;
    this.badge.hidden = !this.badge.textContent;
    this.badge.dataset.kind = video ? "video" : "count";
    const kind = video ? `video${duration ? ` ${duration}` : ""}` : "image";
    this.open.setAttribute("aria-label", `${altText(g.prompt)} (${kind}, ${word.toLowerCase()}): open`);
    this.renderMedia(g, output);
  }

  renderMedia(g, output) {
    let picture = null; // {key, url, width, height}
    let text = "";
    let mood = "active";
    if (g.status === "SUCCEEDED" && output) {
      const state = thumbnailState(g);
      if (state === "ready") {
        const { id, url, width, height } = output.thumbnail;
        picture = { key: id, url, width, height };
      } else if (state === "original" && !isVideo(output)) {
        // Stored before thumbnails existed: the image itself stands in.
        picture = { key: output.id, url: output.url, width: output.width, height: output.height };
      } else if (state === "pending") {
        [text, mood] = ["Making preview…", "pending"];
      } else {
        [text, mood] = ["No preview", "none"];
      }
    } else if (g.status === "SUCCEEDED") {
      [text, mood] = ["No output", "none"];
    } else if (FINAL.has(g.status)) {
      text = g.error?.code ? `${STATUS_WORDS[g.status]}: ${g.error.code}` : STATUS_WORDS[g.status];
      mood = "ended";
    }
    const key = picture ? `img:${picture.key}` : `text:${mood}:${text}`;
    // A new signature of the same file keeps the loaded image (no flicker, no second download).
    if (key === this.mediaKey) return;
    this.mediaKey = key;
    if (!picture) {
      this.media.replaceChildren(element("div", `placeholder ${mood}`, text));
      return;
    }
    const img = element("img", "thumb");
    img.alt = altText(g.prompt);
    img.loading = "lazy";
    img.decoding = "async";
    if (picture.width && picture.height) {
      img.width = picture.width;
      img.height = picture.height;
    }
    img.addEventListener("load", () => (this.retriedImage = false));
    img.addEventListener("error", () => this.brokenImage());
    img.src = picture.url;
    this.media.replaceChildren(img);
  }

  // Signed URLs expire (an hour by default): read the generation once for fresh ones, then give up.
  brokenImage() {
    if (this.retriedImage) {
      this.mediaKey = "text:none:broken";
      this.media.replaceChildren(element("div", "placeholder none", "No preview"));
      return;
    }
    this.retriedImage = true;
    this.mediaKey = null;
    gallery.read(this.id).catch(() => this.brokenImage());
  }
}

// ---------------------------------------------------------------- the grid

const gallery = {
  tiles: new Map(), // id -> Tile
  loaded: false, // the first page arrived; events before it wait in `early`
  early: [],
  endCursor: null,
  hasNextPage: false,
  epoch: 0, // bumped by clear(): answers to an earlier session's requests are dropped
  watchdog: null,

  clear() {
    this.epoch++;
    this.tiles.clear();
    this.loaded = false;
    this.early = [];
    this.endCursor = null;
    this.hasNextPage = false;
    clearInterval(this.watchdog);
    this.watchdog = null;
    $("grid").replaceChildren();
    setError("history-error", "");
    this.renderChrome();
  },

  async page(after) {
    const data = await api.request(HISTORY, { first: PAGE_SIZE, after });
    return data.generations;
  },

  async loadFirst() {
    this.clear();
    const epoch = this.epoch;
    show($("history-loading"), true);
    try {
      const page = await this.page(null);
      if (epoch !== this.epoch) return;
      this.takePage(page, "list");
      this.loaded = true;
      for (const event of this.early.splice(0)) this.event(event);
      this.watchdog = setInterval(() => this.checkQuiet(), 5000);
    } catch (error) {
      if (epoch === this.epoch) setError("history-error", `Could not load your generations: ${error.message}`);
    } finally {
      if (epoch === this.epoch) {
        show($("history-loading"), false);
        this.renderChrome();
      }
    }
  },

  async loadMore() {
    const epoch = this.epoch;
    const button = $("load-more");
    button.disabled = true;
    button.textContent = "Loading…";
    try {
      const page = await this.page(this.endCursor);
      if (epoch === this.epoch) this.takePage(page, "list");
    } catch (error) {
      if (epoch === this.epoch) setError("history-error", error.message);
    } finally {
      button.disabled = false;
      button.textContent = "Load more";
      this.renderChrome();
    }
  },

  takePage(connection, source, { paging = true } = {}) {
    for (const { node } of connection.edges) this.accept(node, source, null, { listed: true });
    if (paging) {
      this.endCursor = connection.pageInfo.endCursor;
      this.hasNextPage = connection.pageInfo.hasNextPage;
    }
  },

  event(event) {
    if (!this.loaded) this.early.push(event);
    else this.accept(event.generation, "live", event);
  },

  accept(generation, source, event, { listed = false } = {}) {
    let tile = this.tiles.get(generation.id);
    if (!tile) {
      // An event of a generation older than the last one shown, with pages still to load,
      // is not shown out of place: "Load more" brings it with the current state.
      if (!listed && !this.belongsOnScreen(generation)) return;
      tile = new Tile(generation.id);
      this.tiles.set(generation.id, tile);
      this.place(tile, generation);
    }
    const previous = tile.update(generation, source, event);
    if (previous === undefined) return;
    if (previous !== generation.status && FINAL.has(generation.status) && previous && !FINAL.has(previous)) {
      announce(`"${altText(generation.prompt)}": ${STATUS_WORDS[generation.status].toLowerCase()}`);
      refreshCredits();
    }
    viewer.refresh(tile);
    this.renderChrome();
  },

  belongsOnScreen(generation) {
    if (!this.hasNextPage) return true;
    // The oldest tile shown is the grid's last (the map is in arrival order, not in time order).
    const last = this.tiles.get($("grid").lastElementChild?.dataset.id)?.generation;
    return !last || newerFirst(generation, last) <= 0;
  },

  place(tile, generation) {
    const grid = $("grid");
    for (const item of grid.children) {
      const other = this.tiles.get(item.dataset.id)?.generation;
      if (other && newerFirst(generation, other) < 0) {
        grid.insertBefore(tile.item, item);
        return;
      }
    }
    grid.append(tile.item);
  },

  async read(id) {
    const epoch = this.epoch;
    const { generation } = await api.request(READ, { id });
    if (generation && epoch === this.epoch) this.accept(generation, "read", null, { listed: true });
  },

  // After the socket came back: what happened meanwhile was never pushed, so read it.
  async resync() {
    if (!this.loaded) return;
    const epoch = this.epoch;
    try {
      const page = await this.page(null);
      if (epoch !== this.epoch) return;
      this.takePage(page, "read", { paging: false });
      const fresh = new Set(page.edges.map(({ node }) => node.id));
      for (const tile of this.tiles.values()) {
        if (!fresh.has(tile.id) && !settled(tile.generation)) await this.read(tile.id);
      }
    } catch (error) {
      console.warn("resync:", error);
    }
  },

  checkQuiet() {
    if (socket?.acknowledged !== true) return; // a reconnect reads everything anyway
    const now = Date.now();
    for (const tile of this.tiles.values()) {
      if (settled(tile.generation) || now - tile.lastChange < tile.quietMs) continue;
      tile.lastChange = now;
      tile.quietMs = Math.min(QUIET_MAX_MS, tile.quietMs * 2);
      this.read(tile.id).catch((error) => console.warn("read:", error));
    }
  },

  renderChrome() {
    const count = this.tiles.size;
    show($("history-empty"), this.loaded && count === 0);
    show($("load-more"), this.loaded && this.hasNextPage);
    $("history-count").textContent = count ? `${count} shown${this.hasNextPage ? ", more below" : ""}` : "";
  },
};

// ---------------------------------------------------------------- the viewer

const viewer = {
  tile: null,
  mediaKey: null,
  opener: null,

  open(tile) {
    this.tile = tile;
    this.mediaKey = null;
    this.opener = document.activeElement;
    this.render();
    if (!$("viewer").open) $("viewer").showModal();
  },

  close() {
    if ($("viewer").open) $("viewer").close();
  },

  // The dialog closed (button, Escape, backdrop): stop any video and give focus back. The `close`
  // event comes a task after `close()`: if the viewer was opened again meanwhile, it is not undone.
  closed() {
    if ($("viewer").open) return;
    this.tile = null;
    this.mediaKey = null;
    $("viewer-media").replaceChildren();
    if (this.opener?.isConnected) this.opener.focus();
    this.opener = null;
  },

  refresh(tile) {
    if (this.tile === tile) this.render();
  },

  render() {
    const g = this.tile.generation;
    const output = g.outputs?.[0];
    $("viewer-title").textContent = `${g.model?.name || "Generation"} · ${formatWhen(g.createdAt)}`;
    $("viewer-prompt").textContent = g.prompt;
    const status = $("status");
    status.textContent = g.status;
    status.dataset.status = g.status;
    const percent = Math.round((g.progress ?? 0) * 100);
    $("progress-fill").style.width = `${percent}%`;
    $("progress").setAttribute("aria-valuenow", String(percent));
    $("progress-text").textContent = `${percent}%`;
    show($("cancel"), !FINAL.has(g.status));
    setError("run-error", g.error ? `${g.error.code}: ${g.error.message}` : "");

    const facts = [["Model", g.model?.name], ["Generation", g.id]];
    if (output) {
      facts.push(["Type", output.contentType]);
      if (output.width && output.height) facts.push(["Size", `${output.width} × ${output.height} px`]);
      if (output.durationSeconds != null) facts.push(["Duration", `${output.durationSeconds.toFixed(1)} s`]);
      facts.push(["Bytes", formatBytes(output.size)]);
      if (g.outputs.length > 1) facts.push(["Outputs", String(g.outputs.length)]);
    }
    $("facts").replaceChildren(
      ...facts.filter(([, value]) => value).flatMap(([name, value]) => [element("dt", "", name), element("dd", "", value)]),
    );

    $("events").replaceChildren(
      ...this.tile.events.map((event) => {
        const from = event.previousStatus && event.previousStatus !== event.status ? `${event.previousStatus} → ` : "";
        const thumbnail = event.thumbnail !== "none" ? `  thumbnail ${event.thumbnail}` : "";
        const time = new Date(event.at).toLocaleTimeString();
        const percent = Math.round((event.progress ?? 0) * 100);
        const item = element("li", "", `${time}  ${from}${event.status}  ${percent}%${thumbnail}  (${event.source})`);
        item.dataset.status = event.status;
        item.dataset.source = event.source;
        item.dataset.thumbnail = event.thumbnail;
        return item;
      }),
    );
    this.renderMedia(g);
  },

  renderMedia(g) {
    const box = $("viewer-media");
    const outputs = g.status === "SUCCEEDED" ? g.outputs || [] : [];
    const key = outputs.length ? outputs.map((o) => o.id).join(",") : `status:${g.status}`;
    if (key === this.mediaKey) {
      // The same files: only a poster may have arrived since (a playing video keeps playing).
      for (const video of box.querySelectorAll("video")) {
        const thumbnail = outputs.find((o) => o.id === video.dataset.output)?.thumbnail;
        if (thumbnail?.url && !video.getAttribute("poster")) video.poster = thumbnail.url;
      }
      return;
    }
    this.mediaKey = key;
    if (!outputs.length) {
      const word = FINAL.has(g.status) ? STATUS_WORDS[g.status] : "Not ready yet: this view updates when it is.";
      box.replaceChildren(element("div", `placeholder ${FINAL.has(g.status) ? "ended" : "active"}`, word));
      return;
    }
    box.replaceChildren(
      ...outputs.map((output) => {
        const figure = element("figure", "full");
        let media;
        if (isVideo(output)) {
          media = element("video");
          media.controls = true;
          media.preload = "metadata";
          media.playsInline = true;
          if (output.thumbnail?.url) media.poster = output.thumbnail.url;
          media.setAttribute("aria-label", altText(g.prompt));
        } else {
          media = element("img");
          media.alt = altText(g.prompt);
          media.decoding = "async";
        }
        media.dataset.output = output.id;
        if (output.width && output.height) {
          media.width = output.width;
          media.height = output.height;
        }
        media.src = output.url;
        // The URL downloads as an attachment (named by the server); the element above shows it inline.
        const link = element("a", "", `Download (${formatBytes(output.size)})`);
        link.href = output.url;
        const caption = element("figcaption", "muted");
        caption.append(link);
        figure.append(media, caption);
        return figure;
      }),
    );
  },
};

// ---------------------------------------------------------------- starting and canceling

async function generate(event) {
  event.preventDefault();
  setError("generate-error", "");
  const button = $("generate");
  button.disabled = true;
  try {
    const input = {
      modelId: $("model").value,
      prompt: $("prompt").value.trim(),
      params: readParams(),
      // A retried click with the same key never starts (or charges) twice.
      idempotencyKey: crypto.randomUUID(),
    };
    const file = $("file").disabled ? undefined : $("file").files[0];
    if (file) {
      button.textContent = "Uploading…";
      const uploaded = (await api.upload(file)).uploadChunk;
      if (uploaded.__typename !== "UploadChunkSuccess") throw new Error(failureMessage(uploaded));
      input.inputChunkIds = [uploaded.chunk.id];
    }
    button.textContent = "Starting…";
    const result = (await api.request(GENERATE, { input })).generate;
    if (result.__typename !== "GenerateSuccess") throw new Error(failureMessage(result));
    // At the top at once; its events take it from there.
    gallery.accept(result.generation, "start", null, { listed: true });
    // The file was uploaded for this generation; the next one starts without it unless picked again.
    $("file").value = "";
    gallery.tiles.get(result.generation.id)?.item.scrollIntoView({ block: "nearest" });
    announce(`Started: "${altText(result.generation.prompt)}"`);
    refreshCredits();
  } catch (error) {
    setError("generate-error", error.message);
  } finally {
    button.disabled = false;
    button.textContent = "Generate";
  }
}

async function cancelGeneration(id, errorId) {
  setError(errorId, "");
  try {
    const result = (await api.request(CANCEL, { id })).cancelGeneration;
    if (result.__typename !== "CancelSuccess") setError(errorId, failureMessage(result));
  } catch (error) {
    setError(errorId, error.message);
  }
}

// ---------------------------------------------------------------- forgotten passwords

async function requestReset() {
  setError("signin-error", "");
  $("signin-note").textContent = "";
  const email = $("email").value.trim();
  if (!email) {
    setError("signin-error", "Enter your e-mail address first.");
    return;
  }
  try {
    const result = (await api.request(REQUEST_RESET, { email }, false)).requestPasswordReset;
    if (result.__typename !== "RequestPasswordResetSuccess") {
      setError("signin-error", failureMessage(result));
      return;
    }
    $("signin-note").textContent = "If an account has this address, a link to choose a new password is on its way.";
  } catch (error) {
    setError("signin-error", error.message);
  }
}

// The link's token is in the fragment (#reset=...): no server ever sees it. It is taken out of the
// address bar at once, so it is neither kept in the history nor shown over a shoulder.
function takeResetToken() {
  const match = /^#reset=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return match[1];
}

function offerReset(token) {
  show($("signin-card"), false);
  show($("reset-card"), true);
  $("reset-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("reset-error", "");
    try {
      const input = { token, newPassword: $("new-password").value };
      const result = (await api.request(RESET_PASSWORD, { input }, false)).resetPassword;
      if (result.__typename !== "ResetPasswordSuccess") {
        setError("reset-error", failureMessage(result));
        return;
      }
      show($("reset-card"), false);
      show($("signin-card"), true);
      $("email").value = result.email;
      $("password").value = "";
      $("signin-note").textContent = "Your password is set: sign in with it.";
    } catch (error) {
      setError("reset-error", error.message);
    }
  });
}

// ---------------------------------------------------------------- start-up

async function main() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    authenticate(LOGIN);
  });
  $("register").addEventListener("click", () => {
    if ($("signin-form").reportValidity()) authenticate(REGISTER);
  });
  $("sign-out").addEventListener("click", async () => {
    // Ends the session on the server too (its refresh and access tokens stop working);
    // the page signs out locally whatever the answer.
    if (api.session) {
      try {
        await api.request(LOGOUT, {}, false);
      } catch {
        // offline or already expired: nothing more to end
      }
    }
    signOut("");
  });
  $("forgot").addEventListener("click", requestReset);
  $("generate-form").addEventListener("submit", generate);
  $("model").addEventListener("change", renderParams);
  $("load-more").addEventListener("click", () => gallery.loadMore());
  $("cancel").addEventListener("click", () => viewer.tile && cancelGeneration(viewer.tile.id, "run-error"));
  $("viewer-close").addEventListener("click", () => viewer.close());
  $("viewer").addEventListener("close", () => viewer.closed());
  // A click on the backdrop (the dialog itself, outside its content box) closes it too.
  $("viewer").addEventListener("click", (event) => {
    if (event.target !== $("viewer")) return;
    const box = $("viewer").getBoundingClientRect();
    const inside =
      event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) viewer.close();
  });

  try {
    const config = await (await fetch("config.json")).json();
    api.url = new URL(config.graphqlPath, location.href).toString();
    if (config.demoAccount) {
      $("email").value = config.demoAccount.email;
      $("password").value = config.demoAccount.password;
      show($("demo-hint"), true);
    }
  } catch (error) {
    console.warn("config.json:", error);
  }

  const resetToken = takeResetToken();
  if (resetToken) {
    offerReset(resetToken);
    document.body.dataset.ready = "true";
    return;
  }

  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) {
    api.session = JSON.parse(saved);
    try {
      await enter();
    } catch {
      signOut("");
    }
  }
  document.body.dataset.ready = "true";
}

main();
