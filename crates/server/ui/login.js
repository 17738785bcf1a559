// Sign-in: the server sets the session as an HttpOnly cookie; only the user (name, role)
// is kept in localStorage for the menus; each role lands on its page.
"use strict";
frame("login", false);
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = document.getElementById("msg");
  const username = document.getElementById("username").value.trim();
  const password = document.getElementById("password").value;
  if (!username || !password) { say(msg, t("username") + " / " + t("password")); return; }
  try {
    // Not anonymous: the answer's session cookie must be kept by the browser.
    localStorage.removeItem("cityos.user");
    const r = await api("/api/v1/auth/login", { body: { username, password } });
    localStorage.setItem("cityos.user", JSON.stringify(r.user));
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/ui/") ? next : homeFor(r.user.role);
  } catch (e) {
    say(msg, e.message);
  }
});
