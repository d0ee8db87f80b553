// genhub demo page: sign in, pick a model, start a generation and watch it live.
//
// No build step and no dependencies: GraphQL over HTTP with fetch, uploads with the
// GraphQL multipart request spec, and a small graphql-transport-ws client (below) for
// the `generationUpdated` and `creditsChanged` subscriptions.
"use strict";

// ---------------------------------------------------------------- operations

const AUTH_FRAGMENT = `fragment Auth on AuthResult {
  __typename
  ... on AuthPayload { accessToken refreshToken expiresIn user { id email } }
  ... on Error { code message }
  ... on InvalidInput { fields { field message } }
}`;
const LOGIN = `mutation Login($input: LoginInput!) {
  login(input: $input) { ...Auth }
}
${AUTH_FRAGMENT}`;
const REGISTER = `mutation Register($input: RegisterInput!) {
  register(input: $input) { ...Auth }
}
${AUTH_FRAGMENT}`;
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
    ... on GenerateSuccess { generation { id status progress reservedCredits } }
    ... on Error { code message }
    ... on InsufficientCredits { required available }
  }
}`;
const CANCEL = `mutation Cancel($id: ID!) {
  cancelGeneration(id: $id) {
    __typename
    ... on Error { code message }
  }
}`;
const WATCH = `subscription Watch($id: ID!) {
  generationUpdated(id: $id) {
    previousStatus
    at
    generation {
      id status progress chargedCredits
      error { code message }
      outputs { id kind contentType url }
    }
  }
}`;
const READ = `query Read($id: ID!) {
  generation(id: $id) {
    id status progress chargedCredits updatedAt
    error { code message }
    outputs { id kind contentType url }
  }
}`;
const WATCH_CREDITS = `subscription Credits { creditsChanged { balance reserved available } }`;

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
// connection_init carries the token, every subscription is re-sent after a reconnect
// (generationUpdated starts with the current state, so nothing is missed), pings get pongs.
class SubscriptionClient {
  constructor(url, { connectionParams, onState, onUnauthorized }) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.ws = null;
    this.acknowledged = false;
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

// ---------------------------------------------------------------- page state

const $ = (id) => document.getElementById(id);
let socket = null;
const models = new Map(); // id -> AiModel
let stopWatching = null;
let current = null; // the generation on screen: {id, status}

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

  socket = new SubscriptionClient(wsUrl(), {
    connectionParams: () => ({ Authorization: `Bearer ${api.session.accessToken}` }),
    onState: (state) => ($("socket").dataset.state = state),
    onUnauthorized: () => api.refresh(),
  });
  socket.subscribe(WATCH_CREDITS, {}, {
    next: (result) => result.data && showCredits(result.data.creditsChanged),
    error: (error) => console.warn("creditsChanged:", error),
  });
}

function signOut(message) {
  socket?.close();
  socket = null;
  stopWatching = null;
  current = null;
  api.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  show($("account"), false);
  show($("generate-card"), false);
  show($("run-card"), false);
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
    if (type === "bool") params[input.dataset.param] = input.checked;
    else if (type === "int" || type === "number") params[input.dataset.param] = Number(input.value);
    else if (type === "enum") params[input.dataset.param] = spec.values.find((v) => String(v) === input.value);
    else params[input.dataset.param] = input.value;
  }
  return params;
}

// ---------------------------------------------------------------- a generation

function renderEvent(event, source = "live") {
  const { generation } = event;
  // A new stream (after a reconnect) starts with the current state: skip it when unchanged.
  const repeat =
    current?.id === generation.id && current.status === generation.status && current.progress === generation.progress;
  current = { id: generation.id, status: generation.status, progress: generation.progress };
  if (repeat && !event.previousStatus) return;
  const status = $("status");
  status.textContent = generation.status;
  status.dataset.status = generation.status;
  const percent = Math.round(generation.progress * 100);
  $("progress-fill").style.width = `${percent}%`;
  $("progress").setAttribute("aria-valuenow", String(percent));
  $("progress-text").textContent = `${percent}%`;
  show($("cancel"), !FINAL.has(generation.status));

  const item = document.createElement("li");
  const time = new Date(event.at).toLocaleTimeString();
  const from = event.previousStatus ? `${event.previousStatus} → ` : "";
  item.textContent = `${time}  ${from}${generation.status}  ${percent}%${source === "read" ? "  (read)" : ""}`;
  item.dataset.status = generation.status;
  item.dataset.source = source; // "start": the generate result; "live": pushed by generationUpdated; "read": a query after a lost stream
  $("events").append(item);

  if (generation.error) setError("run-error", `${generation.error.code}: ${generation.error.message}`);
  else if (generation.status === "SUCCEEDED") setError("run-error", "");
  if (generation.status === "SUCCEEDED") {
    const output = $("output");
    output.replaceChildren(
      ...generation.outputs.map((asset) => {
        const media = asset.contentType.startsWith("video/") ? document.createElement("video") : new Image();
        media.src = asset.url;
        if (media instanceof HTMLVideoElement) media.controls = true;
        else media.alt = $("prompt").value || "generated image";
        const link = document.createElement("a");
        link.href = asset.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.append(media);
        return link;
      }),
    );
  }
  if (FINAL.has(generation.status)) {
    $("generate").disabled = false;
    // creditsChanged pushes the balance too; this read covers a socket that was reconnecting.
    api.request(CREDITS).then((data) => showCredits(data.credits)).catch(() => {});
  }
}

function watch(generation) {
  stopWatching?.();
  $("run-id").textContent = generation.id;
  $("events").replaceChildren();
  $("output").replaceChildren();
  setError("run-error", "");
  show($("run-card"), true);
  renderEvent({ generation: { ...generation, outputs: [] }, previousStatus: null, at: new Date().toISOString() }, "start");
  subscribeTo(generation.id, 0);
}

function subscribeTo(id, attempt) {
  stopWatching = socket.subscribe(WATCH, { id }, {
    next: (result) => {
      if (result.errors) setError("run-error", result.errors.map((e) => e.message).join("; "));
      if (result.data) renderEvent(result.data.generationUpdated);
    },
    error: (error) => {
      setError("run-error", `Live updates stopped: ${error.message}`);
      resync(id, attempt);
    },
    complete: () => resync(id, attempt),
  });
}

// The stream completes after a final status. If it ended early (a server error, say),
// read the generation once and subscribe again: the new stream starts with the current state.
async function resync(id, attempt) {
  if (current?.id !== id || FINAL.has(current.status)) return;
  try {
    const { generation } = await api.request(READ, { id });
    if (current?.id !== id || !generation) return;
    if (generation.status !== current.status || FINAL.has(generation.status)) {
      renderEvent({ generation, previousStatus: current.status, at: generation.updatedAt }, "read");
    }
    if (!FINAL.has(generation.status) && attempt < 5) {
      setTimeout(() => current?.id === id && subscribeTo(id, attempt + 1), 1000 * (attempt + 1));
    }
  } catch (error) {
    setError("run-error", error.message);
  }
}

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
    watch(result.generation);
  } catch (error) {
    setError("generate-error", error.message);
    button.disabled = false;
  } finally {
    button.textContent = "Generate";
  }
}

async function cancel() {
  if (!current) return;
  try {
    const result = (await api.request(CANCEL, { id: current.id })).cancelGeneration;
    if (result.__typename !== "CancelSuccess") setError("run-error", failureMessage(result));
  } catch (error) {
    setError("run-error", error.message);
  }
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
  $("sign-out").addEventListener("click", () => signOut(""));
  $("generate-form").addEventListener("submit", generate);
  $("cancel").addEventListener("click", cancel);
  $("model").addEventListener("change", renderParams);

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
