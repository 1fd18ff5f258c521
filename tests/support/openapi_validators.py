"""openapi-core validators that build each path look-up and schema validator once per document location.

openapi-core rebuilds them for every request it checks (the path search over the whole document, a format
checker and a jsonschema validator per parameter and body): half the CPU of a simulator-driven test went there.
What they check is unchanged: the same classes do the checking, handed the same schemas.
"""

from __future__ import annotations

from typing import Any, ClassVar

from jsonschema_path import SchemaPath
from openapi_core import Config
from openapi_core.casting.schemas import oas30_types_caster
from openapi_core.casting.schemas.factories import SchemaCastersFactory
from openapi_core.templating.paths.datatypes import PathOperationServer
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.validators import V30ResponseValidator
from openapi_core.validation.schemas import (
    oas30_read_schema_validators_factory,
    oas30_write_schema_validators_factory,
)
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_core.validation.schemas.validators import SchemaValidator


class RememberingSchemaValidators(SchemaValidatorsFactory):
    """`inner`'s validators, one per schema location and option set (a validator keeps no state between values)."""

    def __init__(self, inner: SchemaValidatorsFactory) -> None:
        super().__init__(inner.schema_validator_cls, inner.format_checker)
        self._inner = inner
        self._made: dict[tuple[Any, ...], SchemaValidator] = {}

    def create(self, spec: SchemaPath, schema: SchemaPath, format_validators: Any = None,  # noqa: PLR0917 (openapi-core's)
               extra_format_validators: Any = None, forbid_unspecified_additional_properties: bool = False,
               enforce_properties_required: bool = False) -> SchemaValidator:
        # the validator keeps `schema` (hence its document) alive, so the document's id is not reused
        key = (id(schema.accessor), schema.parts, id(format_validators), id(extra_format_validators),
               forbid_unspecified_additional_properties, enforce_properties_required)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._inner.create(
                spec, schema, format_validators, extra_format_validators,
                forbid_unspecified_additional_properties, enforce_properties_required)
        return made


class RememberingPathFinder(APICallPathFinder):
    """The operation of a method and URL, searched for once per document (the search walks every path)."""

    _found: ClassVar[dict[tuple[Any, ...], PathOperationServer | PathError]] = {}

    def find(self, method: str, name: str) -> PathOperationServer:
        key = (id(self.spec.accessor), self.base_url, method, name)
        found = self._found.get(key)
        if found is None:
            try:
                found = super().find(method, name)
            except PathError as exc:
                found = exc
            self._found[key] = found
        if isinstance(found, PathError):
            raise found
        return found


_WRITE = RememberingSchemaValidators(oas30_write_schema_validators_factory)
_READ = RememberingSchemaValidators(oas30_read_schema_validators_factory)


class RequestValidator(V30RequestValidator):
    schema_validators_factory = _WRITE
    schema_casters_factory = SchemaCastersFactory(_WRITE, oas30_types_caster)
    path_finder_cls = RememberingPathFinder


class ResponseValidator(V30ResponseValidator):
    schema_validators_factory = _READ
    schema_casters_factory = SchemaCastersFactory(_READ, oas30_types_caster)
    path_finder_cls = RememberingPathFinder


def config() -> Config:
    """openapi-core's configuration for the OpenAPI 3.0 documents the tests carry (the documents themselves are
    checked by openapi-spec-validator in tests/contract/test_contract_loader.py, so that is skipped here)."""
    return Config(spec_validator_cls=None, request_validator_cls=RequestValidator,
                  response_validator_cls=ResponseValidator)
