"""The HTML the server renders itself: the login page and the application shell.

Everything interpolated here goes through :func:`html.escape`; alert data never appears in
server-rendered HTML at all (the front end puts it in the page as text nodes).  The shell
carries ``<base href="PREFIX/">`` so that every link and API call of the front end is
relative and the UI works under any sub-path behind a reverse proxy.
"""

from __future__ import annotations

from html import escape

from .. import __version__

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
       "form-action 'self'")

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<base href="{base}">
<title>{title} · Falconet</title>
<link rel="stylesheet" href="static/app.css?v={version}">
<link rel="icon" href="static/favicon.svg" type="image/svg+xml">
"""


def login_page(base: str, csrf: str, next_path: str = "", error: str = "", username: str = "") -> str:
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return (_HEAD.format(base=escape(base), title="Sign in", version=escape(__version__)) + f"""\
</head>
<body class="login">
<main class="login-box">
<h1><span class="logo">Falconet</span></h1>
<form method="post" action="login" id="login-form">
{error_html}
<input type="hidden" name="csrf_token" value="{escape(csrf)}">
<input type="hidden" name="next" value="{escape(next_path)}">
<label>User <input name="username" id="username" autocomplete="username" required
  value="{escape(username)}"></label>
<label>Password <input name="password" id="password" type="password"
  autocomplete="current-password" required></label>
<button type="submit" id="login-submit">Sign in</button>
</form>
<p class="hint">The password was printed once when <code>falconet ui</code> first started;
<code>falconet ui --reset-password</code> makes a new one.</p>
</main>
</body>
</html>
""")


def app_page(base: str, csrf: str, page: str, username: str, event_uuid: str = "") -> str:
    title = {"dashboard": "Dashboard", "events": "Events", "detail": "Alert"}.get(page, "Falconet")
    return (_HEAD.format(base=escape(base), title=title, version=escape(__version__)) + f"""\
<meta name="csrf-token" content="{escape(csrf)}">
<script src="static/app.js?v={escape(__version__)}" defer></script>
</head>
<body data-page="{escape(page)}" data-uuid="{escape(event_uuid)}">
<header class="top">
  <a class="logo" href="./">Falconet</a>
  <nav>
    <a href="./" id="nav-dashboard" class="{'active' if page == 'dashboard' else ''}">Dashboard</a>
    <a href="events" id="nav-events" class="{'active' if page in ('events', 'detail') else ''}">Events</a>
  </nav>
  <span class="live" id="live-status" title="live updates">○ connecting</span>
  <span class="user">{escape(username)}</span>
  <form method="post" action="logout" class="logout">
    <input type="hidden" name="csrf_token" value="{escape(csrf)}">
    <button type="submit" id="logout">Sign out</button>
  </form>
</header>
<main id="main"><noscript>This page needs JavaScript; the JSON API works without it
(see api/v1/docs).</noscript></main>
</body>
</html>
""")


def error_page(base: str, status: int, message: str) -> str:
    return (_HEAD.format(base=escape(base), title=str(status), version=escape(__version__)) + f"""\
</head>
<body class="login"><main class="login-box"><h1>{status}</h1><p>{escape(message)}</p>
<p><a href="./">Back to the dashboard</a></p></main></body></html>
""")
