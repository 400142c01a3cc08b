from . import outputs_pb2 as _outputs_pb2
from . import schema_pb2 as _schema_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class subscribe_request(_message.Message):
    __slots__ = ("min_priority", "rules", "tags", "sources", "resume_after", "epoch")
    MIN_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    min_priority: _schema_pb2.priority
    rules: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[str]
    resume_after: int
    epoch: str
    def __init__(self, min_priority: _Optional[_Union[_schema_pb2.priority, str]] = ..., rules: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[str]] = ..., resume_after: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class alert(_message.Message):
    __slots__ = ("seq", "response", "json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    response: _outputs_pb2.response
    json: str
    def __init__(self, seq: _Optional[int] = ..., response: _Optional[_Union[_outputs_pb2.response, _Mapping]] = ..., json: _Optional[str] = ...) -> None: ...

class notice(_message.Message):
    __slots__ = ("what", "first_available", "missed", "message")
    class kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        GAP: _ClassVar[notice.kind]
        RESTARTED: _ClassVar[notice.kind]
    GAP: notice.kind
    RESTARTED: notice.kind
    WHAT_FIELD_NUMBER: _ClassVar[int]
    FIRST_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    what: notice.kind
    first_available: int
    missed: int
    message: str
    def __init__(self, what: _Optional[_Union[notice.kind, str]] = ..., first_available: _Optional[int] = ..., missed: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class event(_message.Message):
    __slots__ = ("epoch", "alert", "notice")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    alert: alert
    notice: notice
    def __init__(self, epoch: _Optional[str] = ..., alert: _Optional[_Union[alert, _Mapping]] = ..., notice: _Optional[_Union[notice, _Mapping]] = ...) -> None: ...

class info_request(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class info_response(_message.Message):
    __slots__ = ("epoch", "first_seq", "last_seq", "history_capacity", "subscribers", "subscribers_dropped")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    HISTORY_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    first_seq: int
    last_seq: int
    history_capacity: int
    subscribers: int
    subscribers_dropped: int
    def __init__(self, epoch: _Optional[str] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., history_capacity: _Optional[int] = ..., subscribers: _Optional[int] = ..., subscribers_dropped: _Optional[int] = ...) -> None: ...
