"""Every documented KVS error code, and the one exception tree that carries them.

Three families, each with its own way of reaching a client (see ``api/responses.py``):

* :class:`ApiError` -- a public business error (spec §6.1). HTTP 200 with ``ErrNum``/``ErrMsg``.
* :class:`GatewayError` -- a failure before the action runs (spec §1.5.2): authentication,
  unknown action, bad version, throttling. Non-200 with an ``Error{Type,Code,Message}`` body.
* :class:`TaskError` -- a failure of a running task (spec §6.2). Never an HTTP answer: it ends
  the task with ``ErrorCode``/``ErrorMsg`` and the failure callback.

Third-party failures (ffmpeg's stderr, database, HTTP) are translated into these once, at the
boundary where they happen, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any

#: Public API codes (spec §6.1) and our ``ErrMsg`` text for each.
API_MESSAGES: dict[int, str] = {
    0: "success",
    1000: "missing parameter",
    1001: "invalid parameter",
    1002: "invalid user",
    1005: "invalid preset",
    1009: "invalid task id",
    1010: "invalid content",
    1011: "invalid bucket",
    1012: "bucket not in service region",
    1013: "bucket not accessible",
    1014: "invalid object key",
    1015: "invalid preset type",
    1016: "invalid source info",
    1017: "too many source files",
    1018: "invalid ExtParam",
    1019: "time range too large",
    1020: "invalid directory",
    1022: "invalid pipeline",
    1023: "pipeline not initialized",
    1024: "invalid pipeline state",
    1101: "service not enabled",
    1200: "record not found",
    1201: "record already exists",
    1202: "add record failed",
    1203: "delete record failed",
    1204: "update record failed",
    1205: "task finished or deleted",
    1210: "file not found",
    1212: "bucket policy not authorized",
    1213: "source path too long",
}

#: Task (callback) codes (spec §6.2): the exact ``errmsg``/``ErrorMsg`` strings, verbatim.
TASK_MESSAGES: dict[int, str] = {
    0: "Success",
    2001: "Unknown Error",
    2002: "machine reach max rss",
    2003: "input param illegal",
    2004: "task not exist",
    2005: "task shutdown by user",
    2006: "task sniff error",
    2007: "channel not exist",
    2008: "CommonChan task type illegal",
    2009: "Parse url FAIL",
    2010: "String length illegal",
    2011: "Can not find what you want",
    2012: "Daemon exit",
    2013: "Call os function Error",
    2014: "no idle daemon for task",
    2015: "protobuf or json Unmarshal Error",
    2016: "jsonp Marshal Error",
    2017: "variable in struct not set",
    2018: "object count illegal",
    2019: "this is a fake",
    2020: "proto marshal to byte Error",
    2021: "Slave res illegal",
    2022: "Retrytimes illegal or reach thres",
    2023: "GlobalValue content illegal",
    2024: "Module fail to report to tasks_loop",
    2025: "output_format parameter illegal",
    2026: "taskvalue privMsg nil or illegal",
    2027: "job operate data already exist",
    2028: "mkdir FAIL",
    2029: "doHttp input param lack or illegal",
    2030: "doHttp canceled by user",
    2031: "doHttp unknown error",
    2032: "HTTP download file fail",
    2033: "HTTP upload file fail",
    2034: "http callback fail",
    2035: "Slave already exist",
    2036: "input file not ready",
    2037: "not file or directory, or maybe wrong type",
    2038: "operation time out",
    2039: "httpd receive content illegal type",
    2040: "file or dir mode not proper",
    2041: "file not exist",
    2042: "Notify to kts fail",
    2043: "zmq socket allready exist",
    2044: "set paramset fail",
    2045: "form material illegal when POST",
    2046: "Pem file decode fail",
    2047: "init instance fail",
    2048: "multiUpload fail",
    2049: "Ban small to large",
    2050: "operation specified illegal",
    2051: "Extend Task Fail",
    2052: "do not have daemon ID in doneMsgRes",
    2053: "daemon response format illegal",
    2054: "Module not exist",
    2055: "type of body illegal",
    2056: "can not get disk name of current directory",
    2057: "slave fail to report to excutor or reach maxprocdura, maybe blocked",
    2058: "sniffer result has AV headers but no audio and video data",
    2301: "Snapshot Internal Error: read input file EOF",
    2302: "Snapshot Internal Error: encode video error",
    2303: "Snapshot Internal Error: codec context error",
    2304: "Snapshot Internal Error: write frame fail",
    2305: "Snapshot Internal Error: apply bitfilter fail",
    2306: "Snapshot Internal Error: slave task empty",
    2307: "Snapshot Internal Error: slave task full",
    2310: "Snapshot Internal Error: parse json fail",
    2311: "Snapshot Internal Error: json object null",
    2312: "Snapshot Internal Error: zmq send fail",
    2313: "Snapshot Internal Error: zmq recv error",
    2314: "Snapshot Internal Error: notify to twoker fail",
    2315: "Snapshot Internal Error: param check error",
    2319: "Snapshot Internal Error: add input stream fail",
    2320: "Snapshot Internal Error: open input file error",
    2321: "Snapshot Internal Error: find streaminfo fail",
    2322: "Snapshot Internal Error: new output stream fail",
    2323: "Snapshot Internal Error: new output file fail",
    2324: "Snapshot Internal Error: open output file fail",
    2325: "Snapshot Internal Error: input/output stream null",
    2326: "Snapshot Internal Error: dec/enc context null",
    2330: "Snapshot Internal Error: malloc error",
    2331: "Snapshot Internal Error: Sws GetContext error",
    2332: "Snapshot Internal Error: Sws Scale error",
    2333: "snapshot input lack param",
    2334: "snapshot input alter param",
    2335: "snapshot output path not set",
    2336: "snapshot output Num larger than 3",
    2337: "snapshot seek time maybe out of video duration",
    2350: "Snapshot Internal Error: Unknown error",
    2401: "probe inter error: read input file EOF",
    2403: "probe inter error: codec context error",
    2406: "probe inter error: slave task empty",
    2407: "probe inter error: slave task full",
    2410: "probe inter error: parse json fail",
    2411: "probe inter error: json object null",
    2412: "probe inter error: zmq send fail",
    2413: "probe inter error: zmq recv error",
    2414: "probe inter error: notify to tworker fail",
    2415: "probe inter error: param check error",
    2420: "probe inter error: open input file error",
    2421: "probe inter error: find streaminfo fail",
    2422: "probe inter error: new output stream fail",
    2423: "probe inter error: new output file fail",
    2424: "probe inter error: open output file fail",
    2425: "probe inter error: input/output stream null",
    2426: "probe inter error: dec/enc context null",
    2450: "probe inter error: unknown error",
    2501: "unknown request method",
    2502: "allocate channel failed",
    2503: "module not exist or unready",
    3022: "Trans Internal Error: Invalid Argument",
    3140: "Trans Internal Error: Bitstream filter not found",
    3141: "Trans Internal Error: Internal bug",
    3142: "Trans Internal Error: Buffer too small",
    3143: "Trans Internal Error: Decoder not found",
    3144: "Trans Internal Error: Demuxer not found",
    3145: "Trans Internal Error: Encoder not found",
    3146: "Trans Internal Error: End of file",
    3147: "Trans Internal Error: Immediate exit was requested; the called function should not be restarted",
    3148: "Trans Internal Error: Generic error in an external library",
    3149: "Trans Internal Error: Filter not found",
    3150: "Trans Internal Error: Invalid data found when processing input",
    3151: "Trans Internal Error: Muxer not found",
    3152: "Trans Internal Error: Option not found",
    3153: "Trans Internal Error: Not yet implemented in segtran, patches welcome",
    3154: "Trans Internal Error: Protocol not found",
    3155: "Trans Internal Error: Stream not found",
    3156: "Trans Internal Error: Internal bug2",
    3157: "Trans Internal Error: Unknown error, typically from an external library",
    3158: "Trans Internal Error: Requested feature is flagged experimental. Set strict_std_compliance if you really want to use it",
    3159: "Trans Internal Error: Input changed between calls. Reconfiguration is required.",
    3160: "Trans Internal Error: Output changed between calls. Reconfiguration is required.",
    3161: "Trans Internal Error: Http Request 400 Bad Request",
    3162: "Trans Internal Error: Http Request 401 Unauthorized",
    3163: "Trans Internal Error: Http Request 403 Forbidden",
    3164: "Trans Internal Error: Http Request 404 Not Found",
    3165: "Trans Internal Error: Http Request 4xx Other Error",
    3166: "Trans Internal Error: Http Request 5xx Server Error",
    3175: "Trans Internal Error: Internal Other Error",
    3177: "Trans Internal Error:first decoded frame pts_time > start_time. Maybe lead to non-precise timestamp seek",
    3178: "Trans Internal Error:Video/Audio Illegal: pts of first packet is more than zero!",
    3180: "slave connect to zmq error",
    3181: "slave argv too short",
    3182: "slave get bin path error",
    3183: "slave move mp4 file header error",
    3184: "slave input authentication expired",
    3186: "sniffer file unsupport seekable in AVIOContext structure",
    3187: "sniffer sniff time out",
    3188: "src m3u8 file has illegal segment num",
    3189: "sniffer pthread_create() fail!",
    3190: "sniffer reach proc duration thres",
    3200: "slave param error",
    3201: "the time seeking backward too large, exit!",
    3202: "input stream format changed, frame parameters mismatch context",
    3203: "slave open output file fail",
    3204: "error reinitializing filters!",
    3205: "error applying options to the filter",
    3235: "pthread_create fail!",
    3236: "init_msgchannel_context fail!",
    3240: "connection timeout",
    3241: "connection reset by peer",
    3242: "connection refused by server",
    3243: "server terminate the connection",
    3255: "Trans Internal Error: System Signal is caught and Slave proces is killed",
    2062: "source duration exceeds limit",
    3101: "source must be in object storage",
}


class KvsError(Exception):
    """Root of every error openkvs raises on purpose."""


class ApiError(KvsError):
    """A public business error: answered with HTTP 200 and ``ErrNum``/``ErrMsg``.

    ``detail`` names what was wrong (the field, the value); it is appended to the code's
    standard message so that ``ErrMsg`` is both stable and precise.
    """

    def __init__(self, code: int, detail: str = "") -> None:
        if code not in API_MESSAGES:
            raise ValueError(f"undocumented public error code {code}")
        self.code = code
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        base = API_MESSAGES[self.code]
        return f"{base}: {self.detail}" if self.detail else base


def missing(name: str) -> ApiError:
    """1000 for a required parameter that was not given."""
    return ApiError(1000, f"{name} is required")


def invalid(name: str, why: str = "") -> ApiError:
    """1001 for a parameter whose value or type is wrong."""
    return ApiError(1001, f"{name} {why}" if why else name)


class TaskError(KvsError):
    """A task failed; ``code`` is from spec §6.2 and ``message`` its verbatim text.

    ``detail`` (and ``log``) are for logs and operators only; clients see the verbatim
    message.
    """

    def __init__(
        self,
        code: int,
        detail: str = "",
        *,
        log: str = "",
        result: list[dict[str, Any]] | None = None,
    ) -> None:
        if code not in TASK_MESSAGES:
            raise ValueError(f"undocumented task error code {code}")
        self.code = code
        self.detail = detail
        #: The end of the failing program's stderr, kept on the task for the operator.
        self.log = log
        #: What the task did before it failed, stored as its result (a flow's items).
        self.result = result
        super().__init__(f"{code} {self.message}" + (f" ({detail})" if detail else ""))

    @property
    def message(self) -> str:
        return TASK_MESSAGES[self.code]


class GatewayError(KvsError):
    """A failure before the action runs (spec §1.5.2). Subclasses fix status and code."""

    status: int = 500
    code: str = "InternalError"
    type: str = "Receiver"
    default_message: str = "We encountered an internal error. Please try again."

    def __init__(self, message: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class MissingAuthenticationToken(GatewayError):
    status, code, type = 400, "MissingAuthenticationToken", "Sender"
    default_message = "Request is missing Authentication Token"


class IncompleteSignature(GatewayError):
    status, code, type = 400, "IncompleteSignature", "Sender"
    default_message = "The request signature does not conform to AWS SigV4 standards."


class InvalidAction(GatewayError):
    status, code, type = 400, "InvalidAction", "Sender"
    default_message = "The action or operation requested is invalid."


class InvalidVersion(GatewayError):
    status, code, type = 400, "InvalidVersion", "Sender"
    default_message = "The requested version is not supported."


class SignatureDoesNotMatch(GatewayError):
    status, code, type = 403, "SignatureDoesNotMatch", "Sender"
    default_message = (
        "The request signature we calculated does not match the signature you provided."
    )


class InvalidClientTokenId(GatewayError):
    status, code, type = 403, "InvalidClientTokenId", "Sender"
    default_message = "The access key ID provided does not exist in our records."


class RequestExpired(GatewayError):
    status, code, type = 403, "RequestExpired", "Sender"
    default_message = "Request has expired."


class Throttling(GatewayError):
    status, code, type = 429, "Throttling", "Sender"
    default_message = "Rate exceeded."


class RequestEntityTooLarge(GatewayError):
    """The body is (or is declared) larger than ``OPENKVS_MAX_BODY_BYTES``; refused before
    it is read, or as soon as a chunked body passes the limit."""

    status, code, type = 413, "RequestEntityTooLarge", "Sender"
    default_message = "The request body is larger than this service accepts."


class ServiceUnavailable(GatewayError):
    """More connections are open than ``OPENKVS_MAX_CONNECTIONS``; retry later (the SDKs
    retry 503 by themselves)."""

    status, code, type = 503, "ServiceUnavailable", "Receiver"
    default_message = "The service is handling too many connections; please retry."


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached (an outage, a restart, no free pooled connection):
    answered with a ``Retry-After`` header of :attr:`retry_after` seconds. The action did
    not happen, except a write whose commit the outage cut: that one may have happened
    (CreateTask with a ``ClientToken`` makes a retry safe)."""

    default_message = "The service cannot reach its database right now; please retry."
    #: Seconds a client is asked to wait before it tries again (the ``Retry-After`` header).
    retry_after: int = 5


class InternalError(GatewayError):
    """An unexpected failure before or while the action ran (never a bare 500 page)."""
