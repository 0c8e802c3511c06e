// privguard privacy centre: the only script. It tells the server the browser's time zone
// (so that times are shown in it; PIPL subjects always see Beijing time) and keeps a form
// from being sent twice by a double tap. Everything works without it.
(function () {
  "use strict";
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && /^[A-Za-z_\-\/+0-9]{1,64}$/.test(tz) && document.cookie.indexOf("pg_tz=" + tz) < 0) {
      document.cookie = "pg_tz=" + tz + "; path=/; max-age=31536000; samesite=strict";
    }
  } catch (e) { /* no Intl: UTC it is */ }
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.dataset.sent) { ev.preventDefault(); return; }
    f.dataset.sent = "1";
    var b = f.querySelector("button[type=submit]");
    if (b) { b.setAttribute("aria-busy", "true"); }
  });
})();
