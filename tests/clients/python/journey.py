#!/usr/bin/env python3
"""Folio from Python: clients generated from proto/ at run time (nothing
generated is committed), the customer journey against a running gateway,
and error details (google.rpc.ErrorInfo) read from a failure.

Usage: python3 journey.py [gateway address, default 127.0.0.1:50050]
Needs: pip install -r requirements.txt; the operator credentials from
.folio/local-credentials.env (written by `make run`) or FOLIO_OPERATOR_EMAIL
and FOLIO_OPERATOR_PASSWORD.
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[3]
PROTOS = [
    "folio/auth/v1/auth.proto",
    "folio/account/v1/account.proto",
    "folio/ledger/v1/account_types.proto",
    "folio/ledger/v1/ledger.proto",
]


def generate(out):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}", *PROTOS],
        check=True,
    )
    sys.path.insert(0, str(out))


def credentials():
    email, password = os.environ.get("FOLIO_OPERATOR_EMAIL"), os.environ.get("FOLIO_OPERATOR_PASSWORD")
    if email and password:
        return email, password
    values = {}
    for line in (ROOT / ".folio/local-credentials.env").read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values["OPERATOR_EMAIL"], values["OPERATOR_PASSWORD"]


def main():
    gateway = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50050"
    generate(pathlib.Path(tempfile.mkdtemp(prefix="folio-py-")))
    import grpc
    from google.rpc import error_details_pb2, status_pb2
    from folio.account.v1 import account_pb2, account_pb2_grpc
    from folio.auth.v1 import auth_pb2, auth_pb2_grpc
    from folio.ledger.v1 import account_types_pb2, ledger_pb2, ledger_pb2_grpc

    # FOLIO_TLS_CA: the gateway speaks TLS with a certificate of this CA.
    ca = os.environ.get("FOLIO_TLS_CA")
    if ca:
        trusted = grpc.ssl_channel_credentials(root_certificates=pathlib.Path(ca).read_bytes())
        channel = grpc.secure_channel(gateway, trusted)
    else:
        channel = grpc.insecure_channel(gateway)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    accounts = account_pb2_grpc.AccountServiceStub(channel)
    ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
    results = []

    def step(name, fn):
        try:
            fn()
            results.append((name, None))
            print(f"PASS {name}")
        except Exception as error:  # noqa: BLE001 - report every step
            results.append((name, error))
            print(f"FAIL {name}: {error}")
            raise

    # x-folio-read-after (DESIGN §6): a write's answer carries it as a header
    # and a trailer (on PostgreSQL); a read that sends it back sees at least
    # that write. Opaque: keep the latest one and send it as it came.
    def remember_position(call):
        headers, trailers = dict(call.initial_metadata()), dict(call.trailing_metadata())
        position = headers.get("x-folio-read-after")
        if os.environ.get("FOLIO_EXPECT_READ_AFTER") == "1":
            assert position, "a write's answer carries x-folio-read-after"
            assert trailers.get("x-folio-read-after") == position, trailers
        if position:
            state["read_after"] = position

    def read_after():
        position = state.get("read_after")
        return [("x-folio-read-after", position)] if position else []

    def bearer(token):
        return [("authorization", f"Bearer {token}")]

    state = {}
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    password = "Correct horse battery staple 9"

    def register_and_login():
        auth.Register(auth_pb2.RegisterRequest(email=email, password=password, display_name="Py"))
        state["me"] = auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        op_email, op_password = credentials()
        state["op"] = auth.Login(auth_pb2.LoginRequest(email=op_email, password=op_password))

    def error_details_are_readable():
        try:
            auth.Login(auth_pb2.LoginRequest(email=email, password="not the password 1"))
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.code()
            raw = dict(error.trailing_metadata())["grpc-status-details-bin"]
            status = status_pb2.Status.FromString(raw)
            info = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(info), status
            assert (info.reason, info.domain) == ("INVALID_CREDENTIALS", "auth.folio"), info
            return
        raise AssertionError("a wrong password was accepted")

    def create_accounts():
        me, op = state["me"], state["op"]
        def create(name, token, **extra):
            request = account_pb2.CreateAccountRequest(request_id=str(uuid.uuid4()), asset_code="USD", display_name=name, **extra)
            return accounts.CreateAccount(request, metadata=bearer(token)).account
        state["checking"] = create("Checking", me.access_token)
        state["savings"] = create("Savings", me.access_token)
        state["bank"] = create("Funding", op.access_token, owner_id=op.user.id, kind=account_types_pb2.ACCOUNT_KIND_SYSTEM)
        assert state["checking"].status == account_types_pb2.ACCOUNT_STATUS_ACTIVE

    def move_money():
        me, op = state["me"], state["op"]
        def transfer(debit, credit, amount, kind, token, **extra):
            request = ledger_pb2.CreateTransferRequest(
                id=str(uuid.uuid4()), debit_account_id=debit, credit_account_id=credit, amount=amount,
                asset_code="USD", kind=kind, **extra)
            answer, call = ledger.CreateTransfer.with_call(request, metadata=bearer(token))
            remember_position(call)
            return answer.transfer
        funded = transfer(state["bank"].id, state["checking"].id, 10_000, ledger_pb2.TRANSFER_KIND_POSTED, op.access_token)
        moved = transfer(state["checking"].id, state["savings"].id, 2_500, ledger_pb2.TRANSFER_KIND_POSTED, me.access_token)
        hold = transfer(state["checking"].id, state["bank"].id, 1_000, ledger_pb2.TRANSFER_KIND_PENDING, me.access_token, timeout_seconds=600)
        post = ledger_pb2.CreateTransferRequest(id=str(uuid.uuid4()), pending_id=hold.id, kind=ledger_pb2.TRANSFER_KIND_POST_PENDING, amount=600)
        posted = ledger.CreateTransfer(post, metadata=bearer(me.access_token)).transfer
        state["moved"] = [funded.id, moved.id, hold.id, posted.id]

    def statement_and_balances():
        me = state["me"]
        # Handing back the last write's position: never a state older than it,
        # even when a replica serves the read.
        entries = ledger.ListTransfers(ledger_pb2.ListTransfersRequest(account_id=state["checking"].id), metadata=bearer(me.access_token) + read_after()).entries
        assert len(entries) == 4, entries
        assert entries[-1].balance_after.posted == 6_900, entries[-1]
        got = accounts.GetAccount(account_pb2.GetAccountRequest(account_id=state["savings"].id), metadata=bearer(me.access_token))
        assert got.balance.posted == 2_500, got

    # StreamEvents (DESIGN "Ledger events"): a customer watches its own
    # account. Every message carries a cursor; one without an event is a
    # heartbeat. Resuming from a cursor gives what follows it, once.
    def events_of_my_account():
        me = state["me"]

        def transfers(request, count):
            found, cursors = [], []
            call = ledger.StreamEvents(request, metadata=bearer(me.access_token), timeout=20)
            for message in call:
                if message.HasField("event") and message.event.HasField("transfer"):
                    found.append(message.event.transfer.transfer.id)
                    cursors.append(message.cursor)
                    if len(found) == count:
                        call.cancel()
                        break
            return found, cursors

        watch = ledger_pb2.StreamEventsRequest(account_id=state["checking"].id, start_position=ledger_pb2.START_POSITION_EARLIEST)
        found, cursors = transfers(watch, 4)
        assert found == state["moved"], (found, state["moved"])
        resumed, _ = transfers(ledger_pb2.StreamEventsRequest(account_id=state["checking"].id, cursor=cursors[1]), 2)
        assert resumed == state["moved"][2:], resumed
        try:
            next(iter(ledger.StreamEvents(ledger_pb2.StreamEventsRequest(account_id=state["bank"].id), metadata=bearer(me.access_token), timeout=5)))
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
        else:
            raise AssertionError("a customer watched an account it does not own")

    def refresh_and_logout():
        tokens = auth.Refresh(auth_pb2.RefreshRequest(refresh_token=state["me"].refresh_token))
        auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(tokens.access_token))
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=bearer(tokens.access_token))
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
                return
            time.sleep(0.1)
        raise AssertionError("the token still works 5 s after logout")

    try:
        step("register and log in", register_and_login)
        step("error details are readable", error_details_are_readable)
        step("create accounts", create_accounts)
        step("fund, transfer, hold and post", move_money)
        step("statement and balances", statement_and_balances)
        step("the events of my account", events_of_my_account)
        step("refresh, log out, token refused", refresh_and_logout)
    except Exception:  # noqa: BLE001 - the summary below reports it
        pass
    failed = sum(1 for _, error in results if error)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or len(results) < 7 else 0


if __name__ == "__main__":
    sys.exit(main())
