"""Create an API key for an account, optionally creating the account or setting its password so
the same person signs in to the PAL Maker and sees everything made with the key.

The key alone is printed on stdout (``KEY=$(manage.py create_api_key …)`` works); everything else
goes to stderr.
"""
import getpass
import os

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cvi_site import services
from cvi_site.models import Account

#: scripts set the password here instead of answering the prompt
PASSWORD_ENV = "OPENCVI_PASSWORD"


class Command(BaseCommand):
    help = ("Create an API key for an account and print it once. With --password, also set the "
            "account's password (prompted, or from $OPENCVI_PASSWORD) to sign in to the PAL Maker.")

    def add_arguments(self, parser):
        parser.add_argument("account", help="account username")
        parser.add_argument("--name", default="cli", help="a label for the key")
        parser.add_argument("--create-account", action="store_true", help="create the account if it does not exist")
        parser.add_argument("--password", action="store_true",
                            help=f"set the account's password for the PAL Maker (prompted; ${PASSWORD_ENV} "
                                 "gives it without a prompt)")

    def handle(self, *args, account: str, name: str, create_account: bool, password: bool, **options):
        acct = Account.objects.filter(username=account).first()
        if acct is None and not create_account:
            raise CommandError(f"No account {account!r}; pass --create-account to create it.")
        secret = self._password(acct or Account(username=account)) if password else None
        if acct is None:
            try:
                acct = services.account_create(username=account, password=secret)
            except ValidationError as exc:
                raise CommandError(f"account {account!r}: {' '.join(exc.messages)}") from None
        elif secret:
            acct.set_password(secret)
            acct.save(update_fields=["password"])
        created = services.api_key_create(account=acct, name=name)
        self.stdout.write(created.raw_key)
        if acct.has_usable_password():
            base = settings.PUBLIC_URL or f"http://localhost:{os.environ.get('PORT', '8000')}"
            self.stderr.write(f"Sign in to the PAL Maker at {base}/login/ as {acct.username!r}: it shows "
                              "everything made with this key.")
        else:
            self.stderr.write(f"{acct.username!r} has no password yet: run this command with --password to "
                              "sign in to the PAL Maker with it.")

    def _password(self, account: Account) -> str:
        secret = os.environ.get(PASSWORD_ENV)
        if secret is None:
            if not self.stdin_is_interactive():
                raise CommandError(f"--password needs a terminal to ask on, or ${PASSWORD_ENV} set")
            secret = getpass.getpass(f"Password for {account.username}: ")
            if secret != getpass.getpass("The same again: "):
                raise CommandError("the two passwords differ")
        try:
            validate_password(secret, user=account)
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from None
        return secret

    @staticmethod
    def stdin_is_interactive() -> bool:
        import sys

        return sys.stdin.isatty()
