"""Documents as DynamoDB items hold them, and items as DynamoDB counts them toward its limit."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

COMPRESS_OVER = 16 * 1024
"""A body larger than this (JSON, in bytes) is kept zlib-compressed, as binary; smaller ones
stay readable JSON in the console."""
MAX_BODY_BYTES = 16 * 1024 * 1024
"""The most a compressed body may inflate to when read; what trailguard writes is far less."""


def encode_body(document: Any) -> dict[str, Any]:
    """A JSON document as an attribute value: text, or zlib-compressed binary when large."""
    text = json.dumps(document, default=str, separators=(",", ":"))
    data = text.encode()
    if len(data) <= COMPRESS_OVER:
        return {"S": text}
    return {"B": zlib.compress(data)}


def decode_body(value: Mapping[str, Any]) -> Any:
    """What `encode_body` wrote (and the plain JSON text of earlier versions)."""
    if "S" in value:
        return json.loads(value["S"])
    if "B" in value:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(value["B"], MAX_BODY_BYTES)
        except zlib.error as error:
            raise ValueError(f"the compressed body is damaged ({error})") from None
        if inflater.unconsumed_tail:
            raise ValueError(f"the body inflates to more than {MAX_BODY_BYTES:,} bytes")
        if not inflater.eof:
            raise ValueError("the compressed body is cut short")
        return json.loads(data)
    raise ValueError(f"the body is neither text nor binary ({sorted(value)})")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB counts it toward its limit: each attribute's name and
    value in bytes (text in UTF-8, binary raw, a number by its significant digits)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        if "S" in value:
            total += len(value["S"].encode())
        elif "B" in value:
            total += len(value["B"])
        elif "N" in value:
            digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
            total += (len(digits) + 1) // 2 + 1
        else:
            raise TypeError(f"attribute {name}: only S, B and N are sized, not {sorted(value)}")
    return total
