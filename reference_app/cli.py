"""`python -m reference_app serve|upstream|seed`: flags as in docs/internals.md."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from reference_app.settings import DESIGNS

LOOPBACK = "127.0.0.1"
ASGI_FACTORY = "reference_app.asgi:create_from_env"
UPSTREAM_KEEPALIVE_S = 75  # idle keep-alive of the upstream emulator (see _upstream)


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1, got 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m reference_app", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="{serve,upstream,seed}")

    serve = commands.add_parser("serve", help="serve one design of the chat service")
    serve.add_argument("--design", required=True, choices=DESIGNS)
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", required=True, type=_port)
    serve.add_argument("--data-dir", required=True, type=Path)
    serve.add_argument("--upstream", required=True, metavar="URL", help="LLM emulator base URL")
    serve.add_argument("--workers", type=_positive_int, default=1)
    serve.add_argument("--probe", action="store_true", help="wrap the app in the tracemalloc probe")

    upstream = commands.add_parser("upstream", help="run the LLM emulator")
    upstream.add_argument("--host", default=LOOPBACK)
    upstream.add_argument("--port", required=True, type=_port)
    upstream.add_argument("--first-token-ms", type=_non_negative_float, default=50.0)
    upstream.add_argument(
        "--tokens-per-s", type=_non_negative_float, default=200.0, help="0: no delay"
    )
    upstream.add_argument("--reply-tokens", type=_positive_int, default=120)

    seed = commands.add_parser("seed", help="write a deterministic dataset for one design")
    seed.add_argument("--design", required=True, choices=DESIGNS)
    seed.add_argument("--data-dir", required=True, type=Path)
    seed.add_argument("--users", type=_non_negative_int, default=200)
    seed.add_argument("--whales", type=_non_negative_int, default=5)
    seed.add_argument("--whale-history", type=_positive_int, default=5000)
    seed.add_argument("--seed", type=int, default=1)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from reference_app.server import exit_cleanly_on_signals, run_app, run_workers

    exit_cleanly_on_signals()
    from reference_app.settings import Settings, SettingsError

    try:
        settings = Settings.for_serve(
            args.design, args.data_dir.resolve(), args.upstream, probe=args.probe
        )
    except SettingsError as exc:
        print(f"python -m reference_app serve: error: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        return run_workers(ASGI_FACTORY, settings.to_env(), args.host, args.port, args.workers)

    from reference_app.asgi import build_app

    return run_app(build_app(settings), args.host, args.port)


def _upstream(args: argparse.Namespace) -> int:
    from reference_app.server import exit_cleanly_on_signals, run_app

    exit_cleanly_on_signals()
    from reference_app.upstream import UpstreamConfig, create_upstream_app

    config = UpstreamConfig(args.first_token_ms, args.tokens_per_s, args.reply_tokens)
    # An LLM API keeps an idle connection for a minute or more; uvicorn's default, 5 s, made
    # the optimized design's pooled client drop its connection between two probe reps when a
    # rep's setup took over its expiry, and the next chat paid ~9 KB for a new one.
    return run_app(
        create_upstream_app(config), args.host, args.port, timeout_keep_alive=UPSTREAM_KEEPALIVE_S
    )


def _seed(args: argparse.Namespace) -> int:
    from reference_app.seed import SeedSpec, seed_store

    started = time.monotonic()
    spec = SeedSpec(args.users, args.whales, args.whale_history, args.seed)
    manifest = seed_store(args.design, args.data_dir, spec)
    messages = sum(user["history_len"] for user in manifest["users"])
    print(
        f"seeded {args.design}: {len(manifest['users'])} users, {messages} messages "
        f"in {time.monotonic() - started:.2f} s -> {args.data_dir}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "upstream":
        return _upstream(args)
    if args.command == "seed":
        return _seed(args)
    parser.print_help()
    return 2
