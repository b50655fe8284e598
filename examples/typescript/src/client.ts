// A small front-end client of the CRM API, typed from the OpenAPI document.
//
// `schema.d.ts` is generated from api-spec/openapi.json by openapi-typescript
// (`npm run generate`); openapi-fetch turns it into a fetch wrapper whose paths,
// parameters, bodies and responses are all checked by the TypeScript compiler.

import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type Schemas = components["schemas"];
export type Company = Schemas["Company"];
export type CompanyInput = Schemas["CompanyInput"];
export type CompanyLink = Schemas["CompanyLink"];
export type Contact = Schemas["Contact"];
export type ContactInput = Schemas["ContactInput"];
export type LifecycleStage = Schemas["LifecycleStage"];
export type Problem = Schemas["Problem"];
export type CrmClient = Client<paths>;

/** A node of the filter language: and / or / not, or one condition on a field. */
export type Filter = Schemas["Filter"];

/** An error answer of the API: its problem+json document (RFC 9457). */
export class ProblemError extends Error {
  readonly problem: Problem;

  constructor(operation: string, problem: Problem) {
    super(`${operation}: ${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = "ProblemError";
    this.problem = problem;
  }

  /** The message for one field of a 422 validation problem, if it names that field. */
  fieldMessage(field: string): string | undefined {
    return this.problem.errors?.find((e) => e.field === field)?.message;
  }
}

/** The data of a successful answer; a problem+json answer is thrown as a ProblemError. */
function unwrap<T>(
  operation: string,
  result: { data?: T; error?: Problem; response: Response },
): T {
  if (result.error !== undefined) {
    throw new ProblemError(operation, result.error);
  }
  if (result.data === undefined) {
    throw new Error(`${operation}: HTTP ${result.response.status} without a body`);
  }
  return result.data;
}

/** A client for the server at `baseUrl`, e.g. `http://127.0.0.1:8080`. */
export function connect(baseUrl: string): CrmClient {
  return createClient<paths>({ baseUrl });
}

/**
 * Creates a workspace and its first admin. Allowed while no workspace exists, or when the
 * server runs with CRM_OPEN_SIGNUP=true; returns false when sign-up is closed (403).
 */
export async function createWorkspace(
  client: CrmClient,
  name: string,
  admin: { email: string; password: string; name: string },
): Promise<boolean> {
  const result = await client.POST("/api/v1/workspaces", {
    body: { name, admin_email: admin.email, admin_password: admin.password, admin_name: admin.name },
  });
  if (result.error?.status === 403) {
    return false;
  }
  unwrap("create workspace", result);
  return true;
}

/** Signs in with e-mail and password; later requests carry the access token. */
export async function signIn(client: CrmClient, email: string, password: string): Promise<void> {
  const tokens = unwrap(
    "login",
    await client.POST("/api/v1/auth/login", { body: { email, password } }),
  );
  const bearer: Middleware = {
    onRequest({ request }) {
      request.headers.set("Authorization", `${tokens.token_type} ${tokens.access_token}`);
      return request;
    },
  };
  client.use(bearer);
}

/** Creates a company. The idempotency key makes a retry after a network error safe. */
export async function createCompany(
  client: CrmClient,
  input: CompanyInput,
  idempotencyKey: string = crypto.randomUUID(),
): Promise<Company> {
  return unwrap(
    "create company",
    await client.POST("/api/v1/companies", {
      body: input,
      params: { header: { "Idempotency-Key": idempotencyKey } },
    }),
  );
}

export async function createContact(client: CrmClient, input: ContactInput): Promise<Contact> {
  return unwrap("create contact", await client.POST("/api/v1/contacts", { body: input }));
}

/** Links a contact to a company (or updates the link); returns all the contact's links. */
export async function linkToCompany(
  client: CrmClient,
  contactId: string,
  companyId: string,
  role: string,
): Promise<CompanyLink[]> {
  return unwrap(
    "link contact to company",
    await client.POST("/api/v1/contacts/{id}/companies", {
      params: { path: { id: contactId } },
      body: { company_id: companyId, role, is_primary: true },
    }),
  );
}

/** Moves a contact to another lifecycle stage, unless it changed since `contact` was read. */
export async function setStage(
  client: CrmClient,
  contact: Contact,
  stage: LifecycleStage,
): Promise<Contact> {
  return unwrap(
    "update contact",
    await client.PATCH("/api/v1/contacts/{id}", {
      params: { path: { id: contact.id }, header: { "If-Match": `"${contact.version}"` } },
      body: { lifecycle_stage: stage },
    }),
  );
}

/** Every contact matching the free text `q`, following the cursors page by page. */
export async function listAllContacts(client: CrmClient, q?: string): Promise<Contact[]> {
  const all: Contact[] = [];
  let cursor: string | undefined;
  do {
    const page = unwrap(
      "list contacts",
      await client.GET("/api/v1/contacts", {
        params: {
          query: {
            limit: 100,
            sort: "-created_at",
            ...(q === undefined ? {} : { q }),
            ...(cursor === undefined ? {} : { cursor }),
          },
        },
      }),
    );
    all.push(...page.data);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return all;
}

/** One page of contacts matching a filter, newest first, with the total count. */
export async function searchContacts(
  client: CrmClient,
  filter: Filter,
): Promise<{ contacts: Contact[]; total: number | undefined }> {
  const page = unwrap(
    "search contacts",
    await client.POST("/api/v1/contacts/search", {
      body: {
        filter,
        sort: [{ field: "created_at", direction: "desc" }],
        limit: 50,
        count: true,
      },
    }),
  );
  return { contacts: page.data, total: page.total ?? undefined };
}

/**
 * Creates a contact, or explains why not: a taken e-mail (409) names the existing contact,
 * a validation failure (422) names each invalid field.
 */
export async function tryCreateContact(
  client: CrmClient,
  input: ContactInput,
): Promise<{ contact: Contact } | { existingId: string } | { invalid: Record<string, string> }> {
  try {
    return { contact: await createContact(client, input) };
  } catch (e) {
    if (!(e instanceof ProblemError)) throw e;
    const { status, existing_id, errors } = e.problem;
    if (status === 409 && existing_id) {
      return { existingId: existing_id };
    }
    if (status === 422 && errors) {
      return { invalid: Object.fromEntries(errors.map((f) => [f.field, f.message])) };
    }
    throw e;
  }
}
