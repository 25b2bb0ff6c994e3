"""Work around a Pulumi 3.272 SDK bug that caps a program at about 950 dynamic resources.

`pulumi.dynamic.serialize_provider` replaces `pickle._Pickler._batch_setitems` with a
sorting wrapper around the *current* method and never puts the original back, so every
dynamic resource adds one wrapper layer; around 950 layers deep, pickling a dict hits
RecursionError. Wrapping it so the pickler's methods are restored after each call keeps
the depth at one, and the serialized bytes are the same.
"""

from __future__ import annotations

import pickle

from pulumi.dynamic import dynamic

_PATCHED = ("_batch_setitems", "save_dict")


def restore_pickler_after_serialize() -> None:
    original = dynamic.serialize_provider
    if getattr(original, "restores_pickler", False):
        return

    def serialize_provider(provider):  # same signature as the SDK's
        saved = {name: pickle._Pickler.__dict__[name] for name in _PATCHED}
        try:
            return original(provider)
        finally:
            for name, method in saved.items():
                setattr(pickle._Pickler, name, method)

    serialize_provider.restores_pickler = True
    dynamic.serialize_provider = serialize_provider
