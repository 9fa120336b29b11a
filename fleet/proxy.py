"""The reverse proxy: nginx in a container, its upstreams taken from the fleet view.

The proxy container starts from a command that writes the configuration it
was given (in an environment variable) and runs nginx in the foreground.
Later changes are written by `container exec` and applied with `nginx -s
reload`: nginx starts new workers with the new upstreams while the old ones
finish the requests they hold, so no connection is dropped.
"""

CONFIG_PATH = "/etc/nginx/baleine.conf"
ENV_NAME = "BALEINE_NGINX_CONF"
PLACEHOLDER = "127.0.0.1:9 down"  # nginx refuses an empty upstream block

# Run by /bin/sh -c with the config as $1: checked before it replaces the running one.
# It returns once the old workers have finished their requests (at most 20 s):
# only then may the backends they were talking to be stopped.
RELOAD = (
    f'printf "%s" "$1" > {CONFIG_PATH}.new && nginx -t -q -c {CONFIG_PATH}.new && '
    f"mv {CONFIG_PATH}.new {CONFIG_PATH} && nginx -c {CONFIG_PATH} -s reload && sleep 0.3 && n=0 && "
    "while grep -qs 'shutting [d]own' /proc/[0-9]*/cmdline && [ $n -lt 200 ]; do sleep 0.1; n=$((n+1)); done"
)
START = f'printf "%s" "${ENV_NAME}" > {CONFIG_PATH} && exec nginx -c {CONFIG_PATH}'


def nginx_config(upstreams, listen):
    """The whole nginx.conf: one upstream of every serving backend, one server on `listen`."""
    servers = "".join(f"        server {address};\n" for address in sorted(set(upstreams)))
    if not servers:
        servers = f"        server {PLACEHOLDER};\n"
    return (
        "# written by invoke deploy: the backends serving now, from the fleet view\n"
        "daemon off;\n"
        "worker_processes 1;\n"
        "pid /run/nginx.pid;\n"
        "error_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    access_log off;\n"
        "    upstream backends {\n"
        f"{servers}"
        "    }\n"
        "    server {\n"
        f"        listen {int(listen)};\n"
        "        location / {\n"
        "            proxy_pass http://backends;\n"
        "            proxy_next_upstream error timeout http_502 http_503;\n"
        "            proxy_connect_timeout 2s;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def command():
    """argv of the proxy container."""
    return ["/bin/sh", "-c", START]


def health_command():
    return "test -s /run/nginx.pid && kill -0 $(cat /run/nginx.pid)"
