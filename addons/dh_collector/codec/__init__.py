"""Pure protocol codecs: DL/T645-2007/1997 and CJ/T188 (no I/O, no ORM).

Modules: :mod:`.dlt645`, :mod:`.cjt188` (frames, messages, builders),
:mod:`.di` (DL/T645 data-identifier registry), :mod:`.vendors` (per-vendor
quirks), :mod:`.recharge` (purchase frames), :mod:`.framing` (streaming
framer), :mod:`.auto` (detection and the JSON view). Every decoding error is
a :class:`CodecError`.
"""

from . import auto, cjt188, di, dlt645, framing, recharge, vendors
from .auto import decode, decode_stream, decode_to_json, detect
from .bcd import parse_hex, to_hex
from .errors import AbnormalReply, CodecError
from .framing import StreamDecoder
from .vendors import VendorProfile, get_vendor, register_vendor

__all__ = [
    'AbnormalReply', 'CodecError', 'StreamDecoder', 'VendorProfile', 'auto',
    'cjt188', 'decode', 'decode_stream', 'decode_to_json', 'detect', 'di',
    'dlt645', 'framing', 'get_vendor', 'parse_hex', 'recharge',
    'register_vendor', 'to_hex', 'vendors',
    ]
