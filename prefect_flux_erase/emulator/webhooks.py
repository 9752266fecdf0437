"""Webhook delivery: one POST per result item, retried with backoff and jitter on failure.

The schedule follows Runware's guide (§5, §11 #10): answer within ``webhook_timeout`` seconds or
the delivery is retried after ``webhook_backoff`` seconds, doubling up to ``webhook_backoff_max``,
with jitter, for ``webhook_attempts`` attempts in total. Every number is in the config so that
tests run in milliseconds.

Example:
    ```python
    sender = WebhookSender(client, stats, seed=0)
    delivered = await sender.deliver("http://127.0.0.1:9000/hook?token=t", {"taskUUID": "..."},
                                     config)
    ```
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from prefect_flux_erase.emulator.config import EmulatorConfig
from prefect_flux_erase.emulator.counters import Stats

logger = logging.getLogger(__name__)


def backoff_delays(config: EmulatorConfig, rng: random.Random) -> list[float]:
    """The waits between attempts: ``webhook_backoff`` doubling to the cap, each jittered.

    The jitter keeps each wait between half and all of its nominal value, so retries from many
    tasks do not arrive in lockstep.

    Example:
        >>> cfg = EmulatorConfig(webhook_backoff=0.25, webhook_backoff_max=8, webhook_attempts=6)
        >>> waits = backoff_delays(cfg, random.Random(0))
        >>> len(waits), all(0.125 <= w <= 0.25 * 2 ** i for i, w in enumerate(waits))
        (5, True)
    """
    delays: list[float] = []
    nominal = config.webhook_backoff
    for _ in range(config.webhook_attempts - 1):
        delays.append(nominal / 2 + rng.random() * nominal / 2)
        nominal = min(nominal * 2, config.webhook_backoff_max)
    return delays


class WebhookSender:
    """Delivers webhook bodies over a shared HTTP client and counts the outcome in stats.

    Example:
        ```python
        sender = WebhookSender(httpx.AsyncClient(), Stats(), seed=0)
        await sender.deliver("https://example.com/hook?token=t", item, EmulatorConfig())
        ```
    """

    def __init__(self, client: httpx.AsyncClient, stats: Stats, *, seed: int) -> None:
        self.client = client
        self.stats = stats
        self._rng = random.Random(seed)

    def reset(self, stats: Stats, seed: int) -> None:
        """Count into new stats and restart the jitter sequence."""
        self.stats = stats
        self._rng = random.Random(seed)

    async def deliver(self, url: str, body: dict[str, Any], config: EmulatorConfig) -> bool:
        """POST ``body`` to ``url`` until a 2xx answer or the attempts run out.

        Returns whether it was delivered. The URL is never logged whole: webhook URLs carry
        their authentication token in the query string.
        """
        waits = backoff_delays(config, self._rng)
        shown = url.split("?", 1)[0]
        for attempt in range(config.webhook_attempts):
            self.stats.webhooks["attempts"] += 1
            try:
                response = await self.client.post(url, json=body, timeout=config.webhook_timeout)
                if 200 <= response.status_code < 300:
                    self.stats.webhooks["delivered"] += 1
                    return True
                outcome = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            logger.debug("webhook to %s: attempt %d got %s", shown, attempt + 1, outcome)
            if attempt < len(waits):
                self.stats.webhook_retry_delays.append(waits[attempt])
                await asyncio.sleep(waits[attempt])
        self.stats.webhooks["failed"] += 1
        logger.warning("webhook to %s failed after %d attempts", shown, config.webhook_attempts)
        return False
