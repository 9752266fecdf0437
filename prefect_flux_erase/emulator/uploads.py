"""``uploadEndpoint``: PUT each result's raw bytes to the caller's (usually presigned) URL.

Example:
    ```python
    problem = await put_output(client, "https://bucket.s3.amazonaws.com/k.png?X-Amz-Signature=…",
                               png_bytes, "image/png", put_timeout=30)
    assert problem is None
    ```
"""

from __future__ import annotations

import httpx


async def put_output(
    client: httpx.AsyncClient, url: str, data: bytes, mime: str, *, put_timeout: float
) -> str | None:
    """PUT ``data`` with ``Content-Type: mime``; return None on 2xx, else what went wrong.

    The returned text names the URL without its query string, because presigned URLs carry
    their signature there.

    Example:
        ```python
        await put_output(client, presigned_url, png, "image/png", put_timeout=30)  # None: done
        ```
    """
    shown = url.split("?", 1)[0]
    try:
        response = await client.put(
            url, content=data, headers={"Content-Type": mime}, timeout=put_timeout
        )
    except httpx.HTTPError as exc:
        return f"uploadEndpoint {shown}: {type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"uploadEndpoint {shown}: HTTP {response.status_code}"
