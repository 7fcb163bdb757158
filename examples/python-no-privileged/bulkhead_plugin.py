"""Reusable glue for bulkhead plugins written in Python (componentize-py).

Copy this file next to your app module. It does two things the generated bindings do not:

* **Exceptions reach the host with their message.** An exception that escapes an export of a
  componentize-py component becomes a bare Wasm trap: the operator sees "trapped: wasm
  `unreachable` instruction executed" and nothing about what went wrong. `@guard` catches it and
  returns `plugin-error.internal("<ExceptionType>: <message>")` instead, after logging the same
  text and the stack (file:line in function) at error level through the host's `log`. The host
  then applies the operator's failure policy exactly as it would for a trap.
* **Plugin errors as ordinary exceptions.** Raise `InvalidConfig("...")` or `Unsupported("...")`
  anywhere below an export and `@guard` returns the matching WIT `plugin-error` case.

Plus `parse_config(plugin, text)`: the operator's `[plugins.config]` table as a `dict`.

Everything here is imported when the component is built (componentize-py snapshots the
interpreter after importing the app), which matters: the component is built with `--stub-wasi`,
so nothing may touch files, the clock or the environment at run time. That is also why the stack
is formatted by hand below: `traceback.format_exc()` reads source files to show each line.
"""

import functools
import json
from typing import Any, Callable, Dict, TypeVar

from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    LogLevel,
    PluginError_Internal,
    PluginError_InvalidConfig,
    PluginError_Unsupported,
)

__all__ = ["InvalidConfig", "Unsupported", "guard", "parse_config", "describe"]

F = TypeVar("F", bound=Callable[..., Any])

# Stack frames kept in the error log line: the innermost ones say where it broke.
_MAX_FRAMES = 8


class InvalidConfig(Exception):
    """The operator's config is unusable: becomes `plugin-error.invalid-config(message)`.

    Name the key at fault in the message; `bulkhead check-config` shows it to the operator.
    """


class Unsupported(Exception):
    """The plugin cannot judge this container: becomes `plugin-error.unsupported(message)`."""


def describe(error: BaseException) -> str:
    """`<ExceptionType>: <message>`, the text the host receives for an unexpected exception."""
    message = str(error)
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def _stack(error: BaseException) -> str:
    """The traceback as `file:line in function` entries, innermost last, without source lines
    (reading them would touch the filesystem, which traps under `--stub-wasi`)."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    # The first frame is the guard's wrapper itself: not interesting.
    frames = frames[1:][-_MAX_FRAMES:]
    return " <- ".join(reversed(frames))


def _log_error(message: str) -> None:
    try:
        host.log(LogLevel.ERROR, message)
    except BaseException:  # noqa: BLE001 - logging must never hide the original error
        pass


def guard(export: F) -> F:
    """Decorates a `validate_config` or `check_container` method so that no exception traps.

    * `Err(plugin-error)` raised by the code (the bindings' own way) passes through unchanged;
    * `InvalidConfig` / `Unsupported` become the matching `plugin-error` case;
    * anything else is logged at error level with its stack and returned as
      `plugin-error.internal("<ExceptionType>: <message>")`.
    """

    @functools.wraps(export)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return export(*args, **kwargs)
        except Err:
            raise
        except InvalidConfig as error:
            raise Err(PluginError_InvalidConfig(str(error)))
        except Unsupported as error:
            raise Err(PluginError_Unsupported(str(error)))
        except BaseException as error:  # noqa: BLE001 - the point: no exception may trap
            message = describe(error)
            _log_error(f"{message} (at {_stack(error)})")
            raise Err(PluginError_Internal(message))

    return guarded  # type: ignore[return-value]


def parse_config(plugin: str, text: str) -> Dict[str, Any]:
    """The operator's `[plugins.config]` table, which bulkhead passes as a JSON object (`{}` when
    the operator wrote none; an empty text is read as `{}` too).

    Raises `InvalidConfig("<plugin>: ...")` when the text is not a JSON object.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidConfig(f"{plugin}: config is not a JSON document: {error}") from None
    if not isinstance(value, dict):
        raise InvalidConfig(f"{plugin}: config must be a JSON object, got {type(value).__name__}")
    return value

