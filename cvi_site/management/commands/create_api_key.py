from django.core.management.base import BaseCommand, CommandError

from cvi_site import services
from cvi_site.models import Account


class Command(BaseCommand):
    help = "Create an API key for an account (created if missing) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("account", help="account username")
        parser.add_argument("--name", default="cli", help="a label for the key")
        parser.add_argument("--create-account", action="store_true", help="create the account if it does not exist")

    def handle(self, *args, account: str, name: str, create_account: bool, **options):
        acct = Account.objects.filter(username=account).first()
        if acct is None:
            if not create_account:
                raise CommandError(f"No account {account!r}; pass --create-account to create it.")
            acct = services.account_create(username=account)
        created = services.api_key_create(account=acct, name=name)
        self.stdout.write(created.raw_key)
