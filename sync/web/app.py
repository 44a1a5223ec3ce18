"""The web console: a Starlette application of server-rendered pages (Jinja2, autoescaped).

``create_web_app(settings, store)`` builds it; nothing is built at import time. Every page
needs a logged-in user; ``auditor`` reads, exports and verifies; ``operator`` may also replay
and discard (``sync.operator_actions``), and each of those is written to the ledger as
``operator:<name>``. State-changing requests are POSTs carrying the session's CSRF token.

Hostile input gets a page that says what is wrong and changes nothing: a guard in front of
the routes refuses over-long paths and query strings (414) and odd ones (400: bad
percent-encoding, control characters, too many parameters); each page checks its own
parameters (400) and ids (404).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.errors import SyncError
from state import ledger
from state.ledger import LedgerEntry
from state.models import DeliveryKind, RecordStatus
from state.store import StateStore
from state.users import Role, get_user
from sync.operations import actions as operator_actions
from sync.operations.actions import ActionRefused, AppBuilder, UnknownRecord, failure_id
from sync.operations.ledger_export import CSV_COLUMNS, csv_row, jsonl_line
from sync.operations.reconcile import last_reconcile
from sync.pipeline.periods import stored_period
from sync.secrets_guard import secret_problem
from sync.settings import Settings
from sync.web import _queries as q
from sync.web._chart import progress_chart
from sync.web._words import explain, kind_label, status_label, wib, wib_date
from sync.web.auth import (
    COOKIE,
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE_S,
    Clock,
    Cookie,
    Devices,
    LoginLimiter,
    LoginPolicy,
    Passwords,
    Sessions,
)
from sync.web.guard import (
    CONTROL,
    NIP,
    NPSN,
    PERIOD,
    Gate,
    Guard,
    Problem,
    View,
    bad,
    error_handlers,
    form_text,
    read_form,
)
from sync.web.keys import ConsoleKey, console_key

__all__ = ["COOKIE", "DEVICE_COOKIE", "create_web_app"]

_HERE = Path(__file__).parent
LEDGER_PAGE = 100

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HEAD = re.compile(r"([0-9a-fA-F]{64})@([0-9]{1,12})")
_USER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_WIB = dt.timezone(dt.timedelta(hours=7), "WIB")
# The days a ledger filter may name: any later or earlier would not fit a datetime once
# turned into UTC (0001-01-01 WIB is in year 0 UTC; the day after 9999-12-31 is year 10000).
FIRST_DAY = dt.date(1, 1, 2)
LAST_DAY = dt.date(9999, 12, 30)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the console -------------------------------------------------------------------------------


class Console:
    """The routes and what they share. Built by ``create_web_app``."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        *,
        clock: Clock,
        passwords: Passwords,
        limiter: LoginLimiter,
        build: AppBuilder,
        key: ConsoleKey,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.passwords = passwords
        self.limiter = limiter
        self.build = build
        self.key = key
        self.sessions = Sessions(
            store.engine,
            key,
            clock=clock,
            max_age_s=settings.web.session_max_age_s,
            idle_s=settings.web.session_idle_s,
        )
        self.devices = Devices(key)
        self.gate = Gate(self.sessions, self.error)
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(["html", "svg"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            status_label=status_label,
            kind_label=kind_label,
            explain=explain,
            wib=wib,
            failure_id=failure_id,
            pretty_json=_pretty_json,
        )

    # -- rendering -------------------------------------------------------------------------

    def render(
        self,
        name: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        view: View | None = None,
        request: Request | None = None,
    ) -> HTMLResponse:
        if view is not None:
            context.setdefault("user", view.user)
            context.setdefault("csrf", view.csrf)
            context.setdefault("path", view.request.url.path)
        elif request is not None:
            context.setdefault("path", request.url.path)
        html = self.env.get_template(name).render(context)
        return HTMLResponse(html, status_code=status)

    def error(
        self, status: int, title: str, message: str, *, view: View | None = None
    ) -> HTMLResponse:
        return self.render(
            "error.html",
            {"status": status, "title": title, "message": message},
            status=status,
            view=view,
        )

    def _set_cookie(self, response: Response, request: Request, cookie: Cookie) -> None:
        response.set_cookie(
            COOKIE,
            cookie.value,
            max_age=self.settings.web.session_max_age_s if cookie.session_id else None,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    # -- login and logout --------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        cookie = Cookie.parse(request.cookies.get(COOKIE))
        user = await run_in_threadpool(self.sessions.user, cookie)
        if user is not None:
            return RedirectResponse("/", status_code=303)
        fresh = Cookie.anonymous()
        message = None
        if request.query_params.get("expired") == "1":
            message = "Sesi Anda sudah berakhir. Silakan masuk lagi."
        response = self.render(
            "login.html",
            {
                "csrf": self.sessions.csrf(fresh),
                "next": _safe_next(request.query_params.get("next")),
                "message": message,
            },
            request=request,
        )
        self._set_cookie(response, request, fresh)
        return response

    async def login(self, request: Request) -> Response:
        cookie = Cookie.parse(request.cookies.get(COOKIE))
        form = await read_form(request, self.error)
        if isinstance(form, Response):
            return form
        if not self.sessions.csrf_matches(cookie, form_text(form.get("csrf_token"))):
            return self.error(
                403,
                "Token formulir tidak sah",
                "Halaman masuk ini sudah kedaluwarsa atau tidak berasal dari konsol ini: "
                "buka halaman masuk lagi.",
            )
        name = form_text(form.get("username")).strip().lower()[:64]
        password = form_text(form.get("password"))
        next_path = _safe_next(form_text(form.get("next")))
        # The peer, or the client a trusted proxy names (web.trusted_proxies; create_web_app).
        client = request.client.host if request.client else "-"
        # Counted before the password is checked: a burst cannot all pass a check made
        # before its failures were counted.
        device = self.devices.holder(request.cookies.get(DEVICE_COOKIE), name)
        wait = await run_in_threadpool(self.limiter.attempt, name, client, device)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            response = self.error(
                429,
                "Terlalu banyak percobaan",
                f"Terlalu banyak percobaan masuk yang gagal. Coba lagi dalam {minutes} menit.",
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        user = None
        if _USER.fullmatch(name):
            user = await run_in_threadpool(get_user, self.store.engine, name)
        valid = await run_in_threadpool(
            self.passwords.verify, user.password_hash if user else None, password
        )
        if not valid or user is None or user.disabled:
            fresh = cookie if cookie is not None and cookie.session_id is None else None
            fresh = fresh or Cookie.anonymous()
            response = self.render(
                "login.html",
                {
                    "csrf": self.sessions.csrf(fresh),
                    "next": next_path,
                    "username": name,
                    "error": "Nama pengguna atau kata sandi salah (atau akun dinonaktifkan).",
                },
                status=401,
                request=request,
            )
            self._set_cookie(response, request, fresh)
            return response
        await run_in_threadpool(self.limiter.succeeded, name, client, device)
        # A new session id at login; a session the browser still held ends.
        await run_in_threadpool(self.sessions.end, cookie)
        started = await run_in_threadpool(self.sessions.start, user)
        redirect = RedirectResponse(next_path, status_code=303)
        self._set_cookie(redirect, request, started)
        if device is None:
            # This browser may log in as this name even while strangers make the name wait.
            redirect.set_cookie(
                DEVICE_COOKIE,
                self.devices.issue(user.name),
                max_age=DEVICE_COOKIE_MAX_AGE_S,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/login",
            )
        return redirect

    def logout(self, view: View) -> Response:
        self.sessions.end(view.cookie)  # the cookie is worth nothing from now on
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- reading pages -----------------------------------------------------------------------

    def _period(self, view: View, known: list[str]) -> str | None:
        period = view.param("period", PERIOD, max_len=6)
        if period is not None:
            return period
        return known[0] if known else None

    def overview(self, view: View) -> Response:
        known = q.periods(self.store.engine)
        period = self._period(view, known)
        context: dict[str, Any] = {"periods": known, "period": period, "nav": "overview"}
        if period is None:
            return self.render("overview.html", context, view=view)
        data = q.overview(self.store, period)
        with Session(self.store.engine) as session:
            history = q.delivery_history(session, period)
        names = {row.npsn: row.name for row in data.schools}
        totals = {row.npsn: row.total for row in data.schools}
        now = self.clock()
        chart = progress_chart(history, totals, names, now=now)
        listed = stored_period(self.store, period)
        days_left = (listed.deadline - now.astimezone(_WIB).date()).days
        unfinished = [row for row in data.schools if row.delivered < row.total or row.attention]
        context.update(
            data=data,
            chart=chart,
            kind=listed.period.kind.value,
            deadline=wib_date(listed.deadline),
            days_left=days_left,
            drift=last_reconcile(self.store, period),
            unfinished=unfinished,
            statuses=[s.value for s in RecordStatus],
            kinds=[k.value for k in DeliveryKind],
        )
        return self.render("overview.html", context, view=view)

    def school(self, view: View) -> Response:
        npsn = view.request.path_params["npsn"]
        if not NPSN.fullmatch(npsn):
            raise Problem(404, "Sekolah tidak ditemukan", "NPSN itu tidak dikenal.")
        known = q.periods(self.store.engine)
        period = self._period(view, known)
        if period is None:
            raise Problem(404, "Sekolah tidak ditemukan", f"Tidak ada data untuk NPSN {npsn}.")
        name, teachers, quarantined, names = q.school_teachers(self.store, period, npsn)
        if not teachers and not quarantined:
            raise Problem(
                404,
                "Sekolah tidak ditemukan",
                f"Tidak ada data untuk NPSN {npsn} pada periode {period}.",
            )
        return self.render(
            "school.html",
            {
                "npsn": npsn,
                "name": name,
                "period": period,
                "periods": known,
                "teachers": teachers,
                "quarantined": quarantined,
                "names": names,
                "nav": "overview",
            },
            view=view,
        )

    def teacher(self, view: View) -> Response:
        nip = view.request.path_params["nip"]
        if not NIP.fullmatch(nip):
            raise Problem(404, "Pegawai tidak ditemukan", "NIP itu tidak dikenal.")
        period = view.param("period", PERIOD, max_len=6)
        found = q.teacher(self.store, nip, period)
        if found is None:
            raise Problem(
                404,
                "Pegawai tidak ditemukan",
                f"Tidak ada data untuk NIP {nip}" + (f" pada periode {period}." if period else "."),
            )
        return self.render(
            "teacher.html",
            {"t": found, "period": period, "nav": "overview", "max_why": operator_actions.MAX_WHY},
            view=view,
        )

    def failures(self, view: View) -> Response:
        known = q.periods(self.store.engine)
        period = view.param("period", PERIOD, max_len=6)
        npsn = view.param("npsn", NPSN, max_len=16)
        reason = view.param("reason", max_len=100)
        status = view.param("status", re.compile(r"failed|locked|held"), max_len=10)
        statuses = (RecordStatus(status),) if status else (RecordStatus.FAILED, RecordStatus.LOCKED)
        rows = self.store.failures(
            period=period, npsns=[npsn] if npsn else [], reason=reason, statuses=statuses
        )
        shown = rows[:500]
        with Session(self.store.engine) as session:
            names = q.teacher_names(session, sorted({r.nip for r in shown}))
            schools = q.school_names(session, None, sorted({r.npsn for r in shown}))
        return self.render(
            "failures.html",
            {
                "rows": shown,
                "count": len(rows),
                "names": names,
                "schools": schools,
                "periods": known,
                "f": {"period": period, "npsn": npsn, "reason": reason, "status": status},
                "nav": "failures",
            },
            view=view,
        )

    def quarantine(self, view: View) -> Response:
        known = q.periods(self.store.engine)
        period = view.param("period", PERIOD, max_len=6)
        npsn = view.param("npsn", NPSN, max_len=16)
        reason = view.param("reason", max_len=100)
        rows = self.store.quarantine(period=period, npsns=[npsn] if npsn else [], reason=reason)
        shown = rows[:500]
        with Session(self.store.engine) as session:
            names = q.teacher_names(session, sorted({r.nip for r in shown if r.nip}))
            schools = q.school_names(session, None, sorted({r.npsn for r in shown if r.npsn}))
        return self.render(
            "quarantine.html",
            {
                "rows": shown,
                "count": len(rows),
                "names": names,
                "schools": schools,
                "periods": known,
                "f": {"period": period, "npsn": npsn, "reason": reason},
                "nav": "quarantine",
            },
            view=view,
        )

    def _ledger_filters(self, view: View) -> q.LedgerFilters:
        since = view.param("since", _DATE, max_len=10)
        until = view.param("until", _DATE, max_len=10)
        return q.LedgerFilters(
            nip=view.param("nip", NIP, max_len=18),
            npsn=view.param("npsn", NPSN, max_len=16),
            period=view.param("period", PERIOD, max_len=6),
            since=_day(since, "since", end_of_day=False),
            until=_day(until, "until", end_of_day=True),
            text=view.param("q", max_len=100),
        )

    def ledger(self, view: View) -> Response:
        filters = self._ledger_filters(view)
        before_text = view.param("before", re.compile(r"[0-9]{1,12}"), max_len=12)
        before = int(before_text) if before_text else None
        entries, total = q.ledger_page(self.store.engine, filters, before=before, size=LEDGER_PAGE)
        raw = {
            name: view.request.query_params.get(name, "")
            for name in ("nip", "npsn", "period", "since", "until", "q")
        }
        query = {k: v for k, v in raw.items() if v}
        more = None
        if len(entries) == LEDGER_PAGE:
            more = "/ledger?" + urlencode({**query, "before": entries[-1].seq})
        return self.render(
            "ledger.html",
            {
                "entries": entries,
                "total": total,
                "f": raw,
                "export_query": urlencode(query),
                "more": more,
                "nav": "ledger",
            },
            view=view,
        )

    def ledger_export(self, view: View) -> Response:
        filters = self._ledger_filters(view)
        fmt = view.param("format", re.compile(r"csv|jsonl"), max_len=5) or "csv"
        redact = view.param("redact", re.compile(r"[01]"), max_len=1) == "1"
        stamp = self.clock().astimezone(_WIB).strftime("%Y%m%d-%H%M%S")
        chunks = _export_chunks(self.store, filters, fmt=fmt, redact=redact)
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        return StreamingResponse(
            chunks,
            media_type=media,
            headers={
                "content-disposition": f'attachment; filename="ledger-{stamp}.{fmt}"',
            },
        )

    def ledger_verify(self, view: View) -> Response:
        against_text = view.param("against", _HEAD, max_len=80)
        against = None
        if against_text:
            match = _HEAD.fullmatch(against_text)
            assert match is not None
            against = (match[1].lower(), int(match[2]))
        started = time.monotonic()
        with Session(self.store.engine) as session:
            result = ledger.verify(session, against=against)
        return self.render(
            "verify.html",
            {
                "result": result,
                "against": against_text,
                "seconds": round(time.monotonic() - started, 2),
                "checked_at": wib(self.clock()),
                "nav": "verify",
            },
            view=view,
        )

    # -- operator actions --------------------------------------------------------------------

    def _refused(self, exc: ActionRefused) -> Problem:
        if isinstance(exc, UnknownRecord):
            return Problem(404, "Data tidak ditemukan", f"Tidak ada data {exc.record_id}.")
        words = {
            "bad_id": "ID data tidak sah (bentuknya <periode>/<NIP>/<skp|assessment>).",
            "nothing_chosen": "Tidak ada data yang dipilih.",
            "not_failed": (
                f"{exc.record_id} berstatus {status_label(exc.status or '')}, bukan gagal: "
                "hanya data yang gagal yang dapat diulangi atau dihentikan."
            ),
            "why_missing": "Tuliskan alasan penghentiannya.",
            "why_too_long": (
                f"Alasan terlalu panjang (paling banyak {operator_actions.MAX_WHY} karakter)."
            ),
            "refused_by_ledger": (
                "Alasan itu tampak berisi rahasia (token atau kata sandi) dan tidak boleh "
                "ditulis ke ledger."
            ),
        }
        status = (
            400
            if exc.code
            in ("bad_id", "nothing_chosen", "why_missing", "why_too_long", "refused_by_ledger")
            else 409
        )
        return Problem(
            status,
            "Tidak dapat dilakukan",
            words.get(exc.code, exc.message) + " Tidak ada yang diubah.",
        )

    def replay(self, view: View) -> Response:
        assert view.form is not None
        ids = [v for v in view.form.getlist("id") if isinstance(v, str)]
        if len(ids) > 50:
            raise bad("id", "paling banyak 50 data sekaligus")
        try:
            outcomes = operator_actions.replay(
                self.settings, self.store, ids, user_name=view.user.name, build=self.build
            )
        except ActionRefused as exc:
            raise self._refused(exc) from None
        except SyncError as exc:
            raise Problem(
                502,
                "PMM atau e-Kinerja tidak dapat dihubungi",
                f"Pengulangan tidak selesai: {exc}. Coba lagi nanti.",
            ) from None
        return self.render(
            "replay_result.html", {"outcomes": outcomes, "nav": "failures"}, view=view
        )

    def discard(self, view: View) -> Response:
        record_id = view.field("id", max_len=60)
        why = view.field("why", max_len=2000)
        secret = secret_problem(why)
        if secret is not None:
            raise Problem(
                400,
                "Alasan tidak dapat disimpan",
                f"Alasan itu tampak berisi rahasia ({_SECRET_WORDS.get(secret, secret)}). "
                "Ledger tidak dapat dihapus, jadi rahasia tidak boleh ditulis ke sana: tulis "
                "alasannya tanpa kata sandi, token atau kunci. Tidak ada yang diubah.",
            )
        try:
            record = operator_actions.discard(
                self.store, record_id, user_name=view.user.name, why=why, clock=self.clock
            )
        except ActionRefused as exc:
            raise self._refused(exc) from None
        return self.render("discard_result.html", {"record": record, "nav": "failures"}, view=view)


# -- helpers -------------------------------------------------------------------------------------


_SECRET_WORDS = {
    "a password, key or token given as name=value": "kata sandi, kunci atau token",
    "an Authorization header": "tanda otorisasi Bearer/Basic",
    "a JSON Web Token (eyJ...)": "token JWT eyJ...",
    "a private key": "kunci privat",
    "an API key": "kunci API",
    "a password in an address": "kata sandi di dalam alamat",
    "a long random-looking string (a key or a token)": "deretan huruf dan angka acak yang "
    "panjang, seperti kunci atau token",
}


def _safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site only (never another host)."""
    if (
        not value
        or len(value) > 512
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or CONTROL.search(value)
    ):
        return "/"
    return value


def _day(value: str | None, name: str, *, end_of_day: bool) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise bad(name, "bukan tanggal (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise bad(
            name,
            f"di luar rentang yang dapat dicari ({FIRST_DAY.isoformat()} sampai "
            f"{LAST_DAY.isoformat()})",
        )
    if end_of_day:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), _WIB)


def _pretty_json(text: str | None) -> str:
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _export_chunks(
    store: StateStore, filters: q.LedgerFilters, *, fmt: str, redact: bool
) -> Iterator[str]:
    """The export, as ``ekinerja-sync ledger export`` writes it (same columns, same escaping
    of spreadsheet formulas, CSV with a BOM and CRLF), a few hundred entries at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    if fmt == "csv":
        buffer.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
    with Session(store.engine) as session:
        for n, entry in enumerate(q.ledger_entries(session, filters), start=1):
            _write_entry(buffer, writer, entry, fmt=fmt, redact=redact)
            if n % 200 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _write_entry(
    out: io.StringIO, writer: Any, entry: LedgerEntry, *, fmt: str, redact: bool
) -> None:
    if fmt == "csv":
        writer.writerow(csv_row(entry, redacted=redact))
    else:
        out.write(jsonl_line(entry, redacted=redact))


def create_web_app(
    settings: Settings,
    store: StateStore,
    *,
    clock: Clock = _utcnow,
    passwords: Passwords | None = None,
    login_policy: LoginPolicy | None = None,
    build: AppBuilder | None = None,
    key: ConsoleKey | None = None,
) -> Starlette:
    """The console's ASGI application over ``store``.

    ``clock`` (sessions, the login throttle, the deadline view), ``passwords`` (the hasher),
    ``login_policy`` (login limits and backoff) and ``build`` (how a replay builds the
    engine; default ``sync.bootstrap.build_app``) are seams for tests. ``key`` is the
    console's key (``sync.web.keys.console_key``: from the settings, never from the store).
    The client's address is taken from ``X-Forwarded-For`` only when the connection comes
    from one of ``web.trusted_proxies``.
    """
    if build is None:
        from sync.bootstrap import build_app

        build = build_app
    console = Console(
        settings,
        store,
        clock=clock,
        passwords=passwords or Passwords(),
        limiter=LoginLimiter(store.engine, clock=clock, policy=login_policy),
        build=build,
        key=key or console_key(settings),
    )
    page = console.gate.page
    routes = [
        Route("/login", console.login_page, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", page(console.logout, post=True), methods=["POST"]),
        Route("/", page(console.overview), methods=["GET"]),
        Route("/schools/{npsn}", page(console.school), methods=["GET"]),
        Route("/teachers/{nip}", page(console.teacher), methods=["GET"]),
        Route("/failures", page(console.failures), methods=["GET"]),
        Route("/quarantine", page(console.quarantine), methods=["GET"]),
        Route("/ledger", page(console.ledger), methods=["GET"]),
        Route("/ledger/export", page(console.ledger_export), methods=["GET"]),
        Route("/ledger/verify", page(console.ledger_verify), methods=["GET"]),
        Route(
            "/actions/replay",
            page(console.replay, role=Role.OPERATOR, post=True),
            methods=["POST"],
        ),
        Route(
            "/actions/discard",
            page(console.discard, role=Role.OPERATOR, post=True),
            methods=["POST"],
        ),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]

    app = Starlette(
        routes=routes,
        exception_handlers=error_handlers(console.error),
    )
    app.state.console = console

    app.add_middleware(Guard, render=console.error)
    if settings.web.trusted_proxies:
        # uvicorn's own middleware (run outermost): the client is the right-most address of
        # X-Forwarded-For that is not a trusted proxy; X-Forwarded-Proto too. Only when the
        # peer is trusted; uvicorn's default trust of 127.0.0.1 is off (server.py).
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.web.trusted_proxies))
    return app
