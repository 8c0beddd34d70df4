"""Flyte's ``flytekit.models`` paths: the literal model a ``TypeTransformer`` speaks.

Flyte's models wrap protobuf messages; here they are plain dataclasses with
Flyte's field names and constructors (``Literal(scalar=Scalar(blob=Blob(...)))``),
enough for a transformer written for Flyte to build and read literals unchanged.
They never leave the process as protobuf: :mod:`kernelflow.core.type_engine`
turns a literal into bytes for the store. It sits at the workflows layer.
"""
