"""The mapping engine: declarative field mappings, checked when loaded and compiled once to Python."""

from gateway.mapping.errors import MappingError, MappingSpecError, SpecIssue
from gateway.mapping.mapping import BulkResult, Mapping, compile_mapping, load_spec
from gateway.mapping.spec import FieldSpec, MappingSpec, load_yaml

__all__ = [
    "BulkResult",
    "FieldSpec",
    "Mapping",
    "MappingError",
    "MappingSpec",
    "MappingSpecError",
    "SpecIssue",
    "compile_mapping",
    "load_spec",
    "load_yaml",
]
