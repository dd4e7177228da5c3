"""A tiny HTTP server for a lab container: ``python -m netteach.programs.http_server 80 web``.

Every GET answers ``hello from <name>`` plus who asked, so a student sees which
container answered and the source address it saw (NAT or not).

It never looks a name up: ``http.server`` asks for the machine's fully
qualified name when it binds (``socket.getfqdn``), a DNS query that inside a
lab goes to a nameserver that may drop it, and the server would hang for the
resolver's timeout before listening. If it cannot start, it says why on
stderr (the lab shows that message) and exits with status 2.
"""

import http.server
import socket
import socketserver
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    port, name = int(argv[0]), argv[1] if len(argv) > 1 else "netteach"

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "netteach"

        def do_GET(self):
            body = f"hello from {name} (you are {self.client_address[0]})\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self):  # the client's address as is: no reverse lookup
            return self.client_address[0]

        def log_message(self, *args):  # quiet: the lab reads results, not logs
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 128  # reachability() connects from every namespace at once

        def server_bind(self):  # HTTPServer.server_bind would call socket.getfqdn(): no lookups
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = name, self.server_address[1]

    try:
        server = Server(("0.0.0.0", port), Handler)
    except OSError as exc:
        print(f"cannot listen on port {port}: {exc.strerror}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"listening on port {port}", file=sys.stderr, flush=True)  # the lab waits for this line
    server.serve_forever()


if __name__ == "__main__":
    main()
