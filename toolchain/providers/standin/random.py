"""Stand-in for pulumi-random 4.21.4: random:index/randomPassword:RandomPassword.

Semantics of the real (Terraform random provider based) resource:
  * every input (length, special, upper, lower, numeric, number, min*, overrideSpecial, keepers)
    forces a replacement, so the result is stable across updates that change nothing;
  * defaults: upper/lower/numeric/special true, min* 0; `number` is the deprecated alias of
    `numeric` and mirrors it;
  * `result` and `bcryptHash` are secret; the id is the literal "none".
Not implemented: the other random resources (RandomString, RandomId, RandomInteger, RandomPet,
RandomShuffle, RandomUuid, RandomBytes) and `pulumi import` of a password.
"""

from __future__ import annotations

import secrets as pysecrets
import string

from .base import UNKNOWN, InputError, Provider, Resource, has_unknown

VERSION = "4.21.4"

SPECIAL = "!@#$%&*()-_=+[]{}<>:?"


def generate(p: dict) -> str:
    length = int(p["length"])
    pools = []
    upper, lower, numeric, special = p["upper"], p["lower"], p["numeric"], p["special"]
    override = p.get("overrideSpecial")
    special_chars = override if override else SPECIAL
    if upper:
        pools.append((string.ascii_uppercase, int(p.get("minUpper") or 0)))
    if lower:
        pools.append((string.ascii_lowercase, int(p.get("minLower") or 0)))
    if numeric:
        pools.append((string.digits, int(p.get("minNumeric") or 0)))
    if special and special_chars:
        pools.append((special_chars, int(p.get("minSpecial") or 0)))
    if not pools:
        raise InputError("length", "at least one character class must be enabled")
    chars = []
    for pool, minimum in pools:
        chars += [pysecrets.choice(pool) for _ in range(minimum)]
    everything = "".join(pool for pool, _ in pools)
    while len(chars) < length:
        chars.append(pysecrets.choice(everything))
    # a random permutation (Fisher-Yates with a CSPRNG)
    for i in range(len(chars) - 1, 0, -1):
        j = pysecrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars[:length]) if len(chars) > length else "".join(chars)


def bcrypt_hash(value: str) -> str:
    """bcrypt (cost 10, as the real provider) via the bcrypt package or libxcrypt's crypt(3)."""
    try:
        import bcrypt  # type: ignore

        return bcrypt.hashpw(value.encode()[:72], bcrypt.gensalt(10)).decode()
    except ImportError:
        pass
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13

        return crypt.crypt(value, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)) or ""
    except (ImportError, AttributeError, OSError):
        return ""


class RandomPassword(Resource):
    token = "random:index/randomPassword:RandomPassword"
    inputs = {
        "length": None, "keepers": None, "lower": True, "upper": True, "numeric": True,
        "number": None, "special": True, "minLower": 0, "minUpper": 0, "minNumeric": 0,
        "minSpecial": 0, "overrideSpecial": None,
    }
    replace_on = "*"
    secret_outputs = frozenset({"result", "bcryptHash"})

    def check(self, urn, news, olds, seed):
        out = super().check(urn, news, olds, seed)
        length = out.get("length")
        if length is None:
            raise InputError("length", "missing required property 'length'")
        if length is not UNKNOWN:
            if not isinstance(length, int) or length < 1:
                raise InputError("length", f"must be an integer >= 1, got {length!r}")
            mins = sum(int(out.get(k) or 0) for k in ("minLower", "minUpper", "minNumeric", "minSpecial")
                       if out.get(k) is not UNKNOWN)
            if mins > length:
                raise InputError("length", f"length ({length}) must be >= the sum of min* ({mins})")
        # `number` is deprecated in favour of `numeric`; they mirror each other
        if news.get("number") is not None and news.get("numeric") is None:
            out["numeric"] = news["number"]
        if out.get("number") is None:
            out["number"] = out["numeric"]
        return out

    def create(self, urn, inputs, preview):
        outs = {k: v for k, v in inputs.items() if v is not None}
        if preview or has_unknown(inputs):
            outs.update(result=UNKNOWN, bcryptHash=UNKNOWN)
            return "", outs
        value = generate(inputs)
        outs.update(result=value, bcryptHash=bcrypt_hash(value))
        return "none", outs

    def update(self, urn, rid, olds, news, preview):
        # only reached for inputs that do not force replacement (none): keep the result
        outs = dict(olds)
        outs.update({k: v for k, v in news.items() if v is not None})
        return outs


class RandomProvider(Provider):
    name = "random"
    version = VERSION
    resources = (RandomPassword,)
