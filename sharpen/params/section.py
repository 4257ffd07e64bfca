"""The base every params section shares: a frozen pydantic model that forbids unknown keys, takes only
finite floats and reads switches and numbers as YAML 1.2 does; plus ParamsError, the error a bad file raises.

Run: `sharpen params` validates params.yaml against every section built on it.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, model_validator

from sharpen.errors import SharpenError


def _takes_number_not_bool(annotation) -> bool:
    options = get_args(annotation) or (annotation,)
    return bool not in options and any(o in (int, float) for o in options)


def _takes_bool(annotation) -> bool:
    options = get_args(annotation) or (annotation,)
    return bool in options and not any(o in (int, float, str) for o in options)


class ParamsError(SharpenError, ValueError):
    """params.yaml is missing, unreadable or invalid; the message names the file and key."""


class _Section(BaseModel):
    # every float finite (inf and nan are errors, not a NaN model or an endless loop)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data):
        """pydantic would take `true` as the number 1, and the string 'off' as false. In YAML 1.2 (DVC's
        reading, and ours) only true/false are booleans, so a switch takes exactly those."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is None:
                    continue
                if isinstance(value, bool) and _takes_number_not_bool(field.annotation):
                    raise ValueError(f"{name}: expected a number, got {value!r}")
                if _takes_bool(field.annotation) and not isinstance(value, bool) and value is not None:
                    raise ValueError(f"{name}: expected true or false, got {value!r} (YAML 1.2, which DVC and "
                                     f"sharpen read, has no yes/no/on/off booleans)")
        return data


def known_or_plugin(value: str, names: tuple[str, ...], what: str) -> str:
    """`value` if it is one of `names` or a user's function by import path (module:function)."""
    from sharpen.plugins import is_import_path

    if value not in names and not is_import_path(value):
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(names)}, or a function by import path "
                         "(module:function)")
    return value
