// A minimal Nexus client: sign up, browse a genre (discover), like, recommendations, sign out.
// Tokens live in memory only. Every call goes through api(), which sends the access token and,
// when the API answers 401 INVALID_TOKEN, rotates the refresh token once and retries.
"use strict";

const API = new URLSearchParams(location.search).get("api") || "";
const state = { access: null, refresh: null, user: null };
const $ = (id) => document.getElementById(id);

function log(line) {
  const item = document.createElement("li");
  item.textContent = line;
  $("log").appendChild(item);
}

function showError(message) {
  $("error").textContent = message;
  log("error: " + message);
}

function remember(data) {
  state.access = data.access_token;
  state.refresh = data.refresh_token;
  state.user = data.user;
}

// The access token's expiry (seconds since the epoch), read from its payload.
function accessExpiry() {
  if (!state.access) return null;
  const payload = state.access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload)).exp;
}

async function call(path, options) {
  const headers = { ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.auth && state.access) headers["Authorization"] = "Bearer " + state.access;
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  // Every answer is the envelope: {status, message, data, meta} or {status, message, code, details}.
  const body = response.status === 304 ? null : await response.json();
  return { status: response.status, body };
}

async function refresh() {
  const answer = await call("/api/auth/refresh", { method: "POST", body: { refresh_token: state.refresh } });
  if (answer.status !== 200) {
    state.access = state.refresh = null;
    throw new Error("session ended: " + answer.body.message);
  }
  remember(answer.body.data);
  log("refreshed the access token");
}

async function api(path, options = {}) {
  let answer = await call(path, { ...options, auth: true });
  if (answer.status === 401 && answer.body.code === "INVALID_TOKEN" && state.refresh) {
    await refresh();
    answer = await call(path, { ...options, auth: true });
  }
  if (answer.status >= 400) throw new Error(`${answer.body.code}: ${answer.body.message}`);
  return answer.body;
}

function movieItem(movie, withLike) {
  const item = document.createElement("li");
  item.dataset.tmdbId = movie.tmdb_id;
  item.append(movie.title + " ");
  if (withLike) {
    const like = document.createElement("button");
    like.type = "button";
    like.textContent = "Like";
    like.setAttribute("aria-label", "Like " + movie.title);
    like.addEventListener("click", () => guard(async () => {
      const saved = await api("/api/user/interactions", {
        method: "POST", body: { tmdb_id: movie.tmdb_id, interaction_type: "liked" } });
      like.textContent = "Liked";
      like.disabled = true;
      log(`liked ${saved.data.movie.title}`);
    }));
    item.appendChild(like);
  }
  return item;
}

async function guard(action) {
  $("error").textContent = "";
  try {
    await action();
  } catch (error) {
    // A refused cross-origin call is a TypeError ("Failed to fetch"): the browser hides the answer.
    showError(error instanceof TypeError ? "The API could not be reached from this page (" + error.message + ")"
                                         : error.message);
  }
}

$("signup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  guard(async () => {
    const answer = await call("/api/auth/register", { method: "POST", body: {
      name: form.get("name"), email: form.get("email"), password: form.get("password") } });
    if (answer.status !== 201) throw new Error(`${answer.body.code}: ${answer.body.message}`);
    remember(answer.body.data);
    log("signed up as " + state.user.email);
    $("who").textContent = state.user.email;
    $("signup").hidden = true;
    $("app").hidden = false;
    const genres = await api("/api/genres");
    for (const genre of genres.data) {
      const option = document.createElement("option");
      option.value = genre.id;
      option.textContent = genre.name;
      $("genre").appendChild(option);
    }
    log(`${genres.data.length} genres`);
  });
});

$("browse").addEventListener("click", () => guard(async () => {
  const genre = $("genre").value;
  const page = await api(`/api/movies/discover?genre_ids=${encodeURIComponent(genre)}&sort=popularity`);
  $("movies").replaceChildren(...page.data.results.map((m) => movieItem(m, true)));
  log(`discover genre ${genre}: ${page.data.total_results} movies (${page.meta.source}, ${page.meta.language})`);
}));

$("recommend").addEventListener("click", () => guard(async () => {
  const page = await api("/api/user/recommendations?per_page=10");
  $("recommendations").replaceChildren(...page.data.results.map((r) => movieItem(r.movie, false)));
  log(`${page.data.results.length} recommendations`);
}));

$("signout").addEventListener("click", () => guard(async () => {
  await call("/api/auth/logout", { method: "POST", body: { refresh_token: state.refresh } });
  state.access = state.refresh = state.user = null;
  $("app").hidden = true;
  $("signup").hidden = false;
  log("signed out");
}));

window.nexusDemo = { accessExpiry, state };
