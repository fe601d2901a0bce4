"""Print the nginx configuration for several OpenCVI web processes behind one site."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cvi_site.deploy import nginx_config


class Command(BaseCommand):
    help = "Print an nginx.conf that routes each conversation to the process holding it (docs/nginx.conf)."

    def add_arguments(self, parser):
        parser.add_argument("--listen", default="80", help="nginx's listen address (default 80)")
        parser.add_argument("--backend", action="append", dest="backends", metavar="HOST:PORT",
                            help="a Daphne process (repeat for each)")
        parser.add_argument("--prefix", default="", help="directory for nginx's pid, logs and temp files")

    def handle(self, *args, listen, backends, prefix, **options):
        if not backends:
            raise CommandError("give each web process with --backend HOST:PORT")
        self.stdout.write(nginx_config(listen=listen, backends=backends, prefix=prefix), ending="")
