// Runs the client against a live server and checks each answer: a workspace, a company,
// a contact linked to it, a conditional update, searches and the problem+json errors.
//
//   CRM_URL=http://127.0.0.1:8080 node dist/main.js      (after `npm run build`)
//
// Exits with status 1 on the first unexpected answer.

import {
  connect,
  createCompany,
  createContact,
  createWorkspace,
  linkToCompany,
  listAllContacts,
  ProblemError,
  searchContacts,
  setStage,
  signIn,
  tryCreateContact,
} from "./client.js";

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

async function main(): Promise<void> {
  const baseUrl = process.env["CRM_URL"] ?? "http://127.0.0.1:8080";
  const admin = {
    email: process.env["CRM_ADMIN_EMAIL"] ?? "ts-admin@example.com",
    password: process.env["CRM_ADMIN_PASSWORD"] ?? "correct horse battery staple",
    name: "TypeScript Admin",
  };
  const client = connect(baseUrl);
  if (!(await createWorkspace(client, "TypeScript example", admin))) {
    console.log("sign-up is closed: signing in to the existing workspace");
  }
  await signIn(client, admin.email, admin.password);

  // Unique per run, so that the example can run again against the same workspace.
  const run = crypto.randomUUID().slice(0, 8);
  const company = await createCompany(client, {
    name: "Müller & Söhne GmbH",
    domain: `mueller-soehne-${run}.example`,
    industry: "Manufacturing",
    size: "201-500",
  });
  check(company.size === "201-500", `company size is ${company.size}`);

  const contact = await createContact(client, {
    first_name: "Zoë",
    last_name: `Ångström-${run}`,
    email: `zoe-${run}@mueller-soehne.example`,
    lifecycle_stage: "new",
  });
  const links = await linkToCompany(client, contact.id, company.id, "Champion");
  check(
    links.length === 1 && links[0]?.company.id === company.id && links[0].role === "Champion",
    `links: ${JSON.stringify(links)}`,
  );

  const growing = await setStage(client, contact, "growing");
  check(
    growing.lifecycle_stage === "growing" && growing.version === contact.version + 1,
    `after the update: stage ${growing.lifecycle_stage}, version ${growing.version}`,
  );
  try {
    await setStage(client, contact, "mature");
    check(false, "an update with a stale If-Match succeeded");
  } catch (e) {
    check(e instanceof ProblemError && e.problem.status === 412, `stale If-Match: ${String(e)}`);
  }

  const { contacts, total } = await searchContacts(client, {
    and: [
      { field: "companies.industry", op: "eq", value: "Manufacturing" },
      { field: "lifecycle_stage", op: "in", value: ["new", "growing"] },
      { field: "email", op: "eq", value: contact.email },
    ],
  });
  check(
    contacts.length === 1 && contacts[0]?.id === contact.id && total === 1,
    `search found ${contacts.length} contacts, total ${total}`,
  );

  const found = await listAllContacts(client, `Ångström-${run}`);
  check(
    found.map((c) => c.id).join() === contact.id,
    `free text found ${found.length} contacts`,
  );

  const again = await tryCreateContact(client, { email: contact.email ?? null });
  check(
    "existingId" in again && again.existingId === contact.id,
    `a duplicate e-mail: ${JSON.stringify(again)}`,
  );
  const invalid = await tryCreateContact(client, { first_name: "Bad", email: "not an e-mail" });
  check(
    "invalid" in invalid && invalid.invalid["email"] !== undefined,
    `an invalid e-mail: ${JSON.stringify(invalid)}`,
  );

  console.log("verified: the TypeScript client works against the live server");
}

main().catch((e: unknown) => {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
