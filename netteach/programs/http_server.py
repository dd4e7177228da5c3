"""A tiny HTTP server for a lab container: ``python -m netteach.programs.http_server 80 web``.

Every GET answers ``hello from <name>`` plus who asked, so a student sees which
container answered and the source address it saw (NAT or not).
"""

import http.server
import socket
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    port, name = int(argv[0]), argv[1] if len(argv) > 1 else socket.gethostname()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "netteach"

        def do_GET(self):
            body = f"hello from {name} (you are {self.client_address[0]})\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: the lab reads results, not logs
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 128  # reachability() connects from every namespace at once

        def server_bind(self):
            # HTTPServer.server_bind asks the resolver for the machine's name (getfqdn): where that
            # name is in no /etc/hosts the lab shows, a DNS query goes to a server the lab cannot
            # reach and start-up hangs for its timeout. The name is only used in logs.
            http.server.socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = "localhost", self.server_address[1]

    Server(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
