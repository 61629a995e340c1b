from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DT_INVALID: _ClassVar[DataType]
    DT_INT8: _ClassVar[DataType]
    DT_INT16: _ClassVar[DataType]
    DT_INT32: _ClassVar[DataType]
    DT_INT64: _ClassVar[DataType]
    DT_FLOAT16: _ClassVar[DataType]
    DT_FLOAT32: _ClassVar[DataType]

class OrderKey(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_ZERO: _ClassVar[OrderKey]
    ORDER_ANY_RANK: _ClassVar[OrderKey]
    ORDER_INCREMENT: _ClassVar[OrderKey]
    ORDER_DECREMENT: _ClassVar[OrderKey]
DT_INVALID: DataType
DT_INT8: DataType
DT_INT16: DataType
DT_INT32: DataType
DT_INT64: DataType
DT_FLOAT16: DataType
DT_FLOAT32: DataType
ORDER_ZERO: OrderKey
ORDER_ANY_RANK: OrderKey
ORDER_INCREMENT: OrderKey
ORDER_DECREMENT: OrderKey

class MetaGraph(_message.Message):
    __slots__ = ("version", "descriptor_core_version", "descriptors", "graphs", "referenced_data", "extra_fields")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_CORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    GRAPHS_FIELD_NUMBER: _ClassVar[int]
    REFERENCED_DATA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    version: int
    descriptor_core_version: int
    descriptors: _containers.RepeatedCompositeFieldContainer[Descriptor]
    graphs: _containers.RepeatedCompositeFieldContainer[Graph]
    referenced_data: _containers.RepeatedCompositeFieldContainer[KeyedData]
    extra_fields: _containers.RepeatedCompositeFieldContainer[KeyedData]
    def __init__(self, version: _Optional[int] = ..., descriptor_core_version: _Optional[int] = ..., descriptors: _Optional[_Iterable[_Union[Descriptor, _Mapping]]] = ..., graphs: _Optional[_Iterable[_Union[Graph, _Mapping]]] = ..., referenced_data: _Optional[_Iterable[_Union[KeyedData, _Mapping]]] = ..., extra_fields: _Optional[_Iterable[_Union[KeyedData, _Mapping]]] = ...) -> None: ...

class KeyedData(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: Data
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Data, _Mapping]] = ...) -> None: ...

class Descriptor(_message.Message):
    __slots__ = ("id", "version", "optional")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    optional: bool
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ..., optional: _Optional[bool] = ...) -> None: ...

class Graph(_message.Message):
    __slots__ = ("id", "nodes", "extra_fields")
    ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    extra_fields: _containers.RepeatedCompositeFieldContainer[KeyedData]
    def __init__(self, id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., extra_fields: _Optional[_Iterable[_Union[KeyedData, _Mapping]]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "inputs", "operation", "fields", "extra_fields")
    ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    operation: str
    fields: _containers.RepeatedCompositeFieldContainer[KeyedData]
    extra_fields: _containers.RepeatedCompositeFieldContainer[KeyedData]
    def __init__(self, id: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., operation: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[KeyedData, _Mapping]]] = ..., extra_fields: _Optional[_Iterable[_Union[KeyedData, _Mapping]]] = ...) -> None: ...

class Data(_message.Message):
    __slots__ = ("s", "s_list", "d", "d_list", "b", "b_list", "i", "i_list", "blob", "ref", "dtype", "dtype_list", "dim_orders", "dim_orders_list")
    S_FIELD_NUMBER: _ClassVar[int]
    S_LIST_FIELD_NUMBER: _ClassVar[int]
    D_FIELD_NUMBER: _ClassVar[int]
    D_LIST_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    B_LIST_FIELD_NUMBER: _ClassVar[int]
    I_FIELD_NUMBER: _ClassVar[int]
    I_LIST_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_LIST_FIELD_NUMBER: _ClassVar[int]
    DIM_ORDERS_FIELD_NUMBER: _ClassVar[int]
    DIM_ORDERS_LIST_FIELD_NUMBER: _ClassVar[int]
    s: str
    s_list: Strings
    d: float
    d_list: Doubles
    b: bool
    b_list: Bools
    i: int
    i_list: Int64s
    blob: bytes
    ref: str
    dtype: DataType
    dtype_list: DataTypes
    dim_orders: DimOrders
    dim_orders_list: DimOrdersList
    def __init__(self, s: _Optional[str] = ..., s_list: _Optional[_Union[Strings, _Mapping]] = ..., d: _Optional[float] = ..., d_list: _Optional[_Union[Doubles, _Mapping]] = ..., b: _Optional[bool] = ..., b_list: _Optional[_Union[Bools, _Mapping]] = ..., i: _Optional[int] = ..., i_list: _Optional[_Union[Int64s, _Mapping]] = ..., blob: _Optional[bytes] = ..., ref: _Optional[str] = ..., dtype: _Optional[_Union[DataType, str]] = ..., dtype_list: _Optional[_Union[DataTypes, _Mapping]] = ..., dim_orders: _Optional[_Union[DimOrders, _Mapping]] = ..., dim_orders_list: _Optional[_Union[DimOrdersList, _Mapping]] = ...) -> None: ...

class DimOrders(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OrderEntry]
    def __init__(self, orders: _Optional[_Iterable[_Union[OrderEntry, _Mapping]]] = ...) -> None: ...

class OrderEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: OrderKey
    value: Int64s
    def __init__(self, key: _Optional[_Union[OrderKey, str]] = ..., value: _Optional[_Union[Int64s, _Mapping]] = ...) -> None: ...

class Strings(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, val: _Optional[_Iterable[str]] = ...) -> None: ...

class Doubles(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, val: _Optional[_Iterable[float]] = ...) -> None: ...

class Bools(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, val: _Optional[_Iterable[bool]] = ...) -> None: ...

class Int64s(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, val: _Optional[_Iterable[int]] = ...) -> None: ...

class DataTypes(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[DataType]
    def __init__(self, val: _Optional[_Iterable[_Union[DataType, str]]] = ...) -> None: ...

class DimOrdersList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedCompositeFieldContainer[DimOrders]
    def __init__(self, val: _Optional[_Iterable[_Union[DimOrders, _Mapping]]] = ...) -> None: ...
