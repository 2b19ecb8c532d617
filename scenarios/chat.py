"""Ordinary chat users: `POST /chat` plain and streamed, and history pages.

Run by the harness as `locust -f scenarios/chat.py --headless -u N -r R -t S ...`.
"""

from scenarios.common import ChatUser

__all__ = ["ChatUser"]
