"""The one exception type of the codecs."""


class CodecError(ValueError):
    """Malformed or unsupported frame or argument.

    ``reason`` is a short human sentence; decoding never raises anything
    else on bad input.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AbnormalReply(CodecError):
    """A well-formed abnormal reply from a meter (C with D6 set).

    Raised on request by ``Message.raise_for_error()``; ``code`` is the error
    word (ERR, SERR or ST) and ``reasons`` its decoded bits.
    """

    def __init__(self, reason: str, code: int, reasons: tuple[str, ...]):
        super().__init__(reason)
        self.code = code
        self.reasons = reasons
