"""Where the service listens (HOST and PORT), tried before the model loads.

gunicorn binds only once the model is loaded (seconds), and on a busy port it then retries
for five seconds and prints ten lines ending in a misleading "Can't connect". The address is
tried here first, as gunicorn (and nginx) will bind it (SO_REUSEADDR, then listen), and
released at once: a port another server holds, an address of no interface here, a name that
does not resolve or a port this user may not open is one line naming the setting. (A port
another server takes in the seconds the model loads meets gunicorn's own retries, as before.)
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from ..settings import SettingsError


def bind_address(host: str, port: int) -> str:
    """``host:port`` as gunicorn's ``bind`` and nginx's ``listen`` read it ([::1]:8000)."""
    try:
        literal_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:  # a hostname
        literal_v6 = False
    return f"[{host}]:{port}" if literal_v6 else f"{host}:{port}"


def _family(host: str) -> socket.AddressFamily:
    # As gunicorn: an IPv6 literal is an IPv6 socket; anything else (names too) is IPv4.
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def check_address(host: str, port: int, port_name: str = "PORT") -> None:
    """Raise SettingsError, one line, unless ``host``:``port`` can be listened on now."""
    shown = bind_address(host, port)
    try:
        with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            probe.listen(1)  # only tried: closed at once, no client can reach it
    except socket.gaierror as exc:
        raise SettingsError(
            f"HOST={host!r}: cannot be resolved ({exc.strerror}); set HOST to "
            "an address of this machine (127.0.0.1: this machine only; "
            "0.0.0.0: every interface) or a name that resolves to one"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                f"{port_name}='{port}': already in use on {shown} (another server listens "
                f"there, perhaps an earlier `make run`); stop it, or set {port_name} to a free "
                "port"
            ) from None
        if exc.errno == errno.EACCES:
            raise SettingsError(
                f"{port_name}='{port}': this user may not listen on {shown} (ports below 1024 "
                f"need root); set {port_name} to a port from 1024 to 65535"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise SettingsError(
                f"HOST={host!r}: no interface of this machine has that address; set HOST to "
                "one of its addresses (127.0.0.1: this machine only; 0.0.0.0: every "
                "interface)"
            ) from None
        raise SettingsError(
            f"HOST={host!r}, {port_name}='{port}': cannot listen on {shown} "
            f"({exc.strerror}); set HOST and {port_name} to an address and "
            "port of this machine that are free"
        ) from None
