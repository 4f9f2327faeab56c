// The customer journey from a browser page, over gRPC-Web through the
// gateway, with a Connect-ES client generated from proto/: the same steps
// as tests/clients/python/journey.py. The page reports each step to the
// runner (run.mjs) through `window.folioJourney`.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { AccountService } from "../gen/folio/account/v1/account_pb.js";
import { AuthService, type LoginResponse } from "../gen/folio/auth/v1/auth_pb.js";
import { AccountKind, AccountStatus } from "../gen/folio/ledger/v1/account_types_pb.js";
import { LedgerService, StartPosition, type StreamEventsRequestSchema, TransferKind } from "../gen/folio/ledger/v1/ledger_pb.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";

type Step = { name: string; error?: string };
type Journey = { done: boolean; steps: Step[] };

declare global {
  interface Window {
    folioJourney: Journey;
    // Set by the runner before the page loads (secrets stay out of the URL).
    folioConfig: { gateway: string; operatorEmail: string; operatorPassword: string };
  }
}

const { gateway, operatorEmail, operatorPassword } = window.folioConfig;
const operator = { email: operatorEmail, password: operatorPassword };

// A bearer token per call, as a browser app keeps it in memory.
let token = "";
const bearer: Interceptor = (next) => (request) => {
  if (token) request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};
const transport = createGrpcWebTransport({ baseUrl: gateway, interceptors: [bearer] });
const auth = createClient(AuthService, transport);
const accounts = createClient(AccountService, transport);
const ledger = createClient(LedgerService, transport);

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

async function as<T>(who: { accessToken: string }, call: () => Promise<T>): Promise<T> {
  token = who.accessToken;
  try {
    return await call();
  } finally {
    token = "";
  }
}

const email = `ts-${crypto.randomUUID().slice(0, 12)}@example.com`;
const password = "Correct horse battery staple 9";
let me: LoginResponse;
let op: LoginResponse;
const ids: Record<string, string> = {};
// The transfers that touched the checking account, in the order made.
const movedIds: string[] = [];

async function registerAndLogIn() {
  await auth.register({ email, password, displayName: "Ts" });
  me = await auth.login({ email, password });
  op = await auth.login(operator);
  check(me.accessToken !== "" && op.accessToken !== "", "no access token");
}

async function errorDetailsAreReadable() {
  try {
    await auth.login({ email, password: "not the password 1" });
  } catch (error) {
    const failure = ConnectError.from(error);
    check(failure.code === Code.Unauthenticated, `code ${Code[failure.code]}`);
    const [info] = failure.findDetails(ErrorInfoSchema);
    check(info !== undefined, "no ErrorInfo in the error's details");
    check(info.reason === "INVALID_CREDENTIALS" && info.domain === "auth.folio", `${info.reason} ${info.domain}`);
    return;
  }
  throw new Error("a wrong password was accepted");
}

async function createAccounts() {
  const open = async (who: LoginResponse, displayName: string, extra = {}) =>
    (await as(who, () => accounts.createAccount({ requestId: crypto.randomUUID(), assetCode: "USD", displayName, ...extra })))
      .account!;
  const checking = await open(me, "Checking");
  const savings = await open(me, "Savings");
  const bank = await open(op, "Funding", { ownerId: op.user!.id, kind: AccountKind.SYSTEM });
  check(checking.status === AccountStatus.ACTIVE, `status ${AccountStatus[checking.status]}`);
  Object.assign(ids, { checking: checking.id, savings: savings.id, bank: bank.id });
}

async function moveMoney() {
  const transfer = (who: LoginResponse, debitAccountId: string, creditAccountId: string, amount: bigint, kind: TransferKind, extra = {}) =>
    as(who, () =>
      ledger.createTransfer({ id: crypto.randomUUID(), debitAccountId, creditAccountId, amount, assetCode: "USD", kind, ...extra }),
    );
  const funded = await transfer(op, ids.bank, ids.checking, 10_000n, TransferKind.POSTED);
  const moved = await transfer(me, ids.checking, ids.savings, 2_500n, TransferKind.POSTED);
  const hold = await transfer(me, ids.checking, ids.bank, 1_000n, TransferKind.PENDING, { timeoutSeconds: 600n });
  const posted = await as(me, () =>
    ledger.createTransfer({ id: crypto.randomUUID(), pendingId: hold.transfer!.id, kind: TransferKind.POST_PENDING, amount: 600n }),
  );
  movedIds.push(...[funded, moved, hold, posted].map((answer) => answer.transfer!.id));
}

async function statementAndBalances() {
  const { entries } = await as(me, () => ledger.listTransfers({ accountId: ids.checking }));
  check(entries.length === 4, `${entries.length} statement entries`);
  check(entries[3].balanceAfter?.posted === 6_900n, `balance after ${entries[3].balanceAfter?.posted}`);
  const savings = await as(me, () => accounts.getAccount({ accountId: ids.savings }));
  check(savings.balance?.posted === 2_500n, `savings ${savings.balance?.posted}`);
}

// StreamEvents over gRPC-Web (DESIGN "Ledger events"): a browser watches its
// own account. Every message carries a cursor; one without an event is a
// heartbeat. Resuming from a cursor gives what follows it, once.
async function transferEvents(request: MessageInitShape<typeof StreamEventsRequestSchema>, count: number) {
  const found: string[] = [];
  const cursors: string[] = [];
  await as(me, async () => {
    for await (const message of ledger.streamEvents(request, { timeoutMs: 20_000 })) {
      const change = message.event?.change;
      if (change?.case !== "transfer") continue;
      found.push(change.value.transfer!.id);
      cursors.push(message.cursor);
      // Leaving the loop cancels the call.
      if (found.length === count) break;
    }
  });
  return { found, cursors };
}

async function eventsOfMyAccount() {
  const all = await transferEvents({ accountId: ids.checking, startPosition: StartPosition.EARLIEST }, 4);
  check(all.found.join() === movedIds.join(), `events ${all.found} for transfers ${movedIds}`);
  const resumed = await transferEvents({ accountId: ids.checking, cursor: all.cursors[1] }, 2);
  check(resumed.found.join() === movedIds.slice(2).join(), `resumed with ${resumed.found}`);
  try {
    await transferEvents({ accountId: ids.bank }, 1);
  } catch (error) {
    const code = ConnectError.from(error).code;
    check(code === Code.PermissionDenied, `code ${Code[code]}`);
    return;
  }
  throw new Error("a customer watched an account it does not own");
}

async function refreshAndLogOut() {
  const fresh = await auth.refresh({ refreshToken: me.refreshToken });
  await as(fresh, () => auth.logout({}));
  const until = Date.now() + 5_000;
  while (Date.now() < until) {
    try {
      await as(fresh, () => auth.getCurrentUser({}));
    } catch (error) {
      const code = ConnectError.from(error).code;
      check(code === Code.Unauthenticated, `code ${Code[code]}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the token still works 5 s after logout");
}

async function main() {
  const journey: Journey = { done: false, steps: [] };
  window.folioJourney = journey;
  const steps: [string, () => Promise<void>][] = [
    ["register and log in", registerAndLogIn],
    ["error details are readable", errorDetailsAreReadable],
    ["create accounts", createAccounts],
    ["fund, transfer, hold and post", moveMoney],
    ["statement and balances", statementAndBalances],
    ["the events of my account", eventsOfMyAccount],
    ["refresh, log out, token refused", refreshAndLogOut],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
      journey.steps.push({ name });
    } catch (error) {
      journey.steps.push({ name, error: String(error) });
      break;
    }
  }
  journey.done = true;
}

void main();
