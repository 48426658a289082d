// Sign in to Marque Auth with openapi-fetch over the types openapi-typescript generates
// (`api.ts`): send-code with a test number, verify-code, profile, refresh, logout, then the
// logged-out token is refused with 401. Exits non-zero at the first step that does not answer
// as expected.
//
//   npx openapi-typescript spec.json -o api.ts && npx tsc && MARQUE_BASE_URL=… node signin.js
//
// The service must know the number's fixed code: TEST_PHONE_NUMBERS=+996555000001=123456
// (MARQUE_TEST_PHONE and MARQUE_TEST_CODE choose another pair).

import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./api.js";

const baseUrl = process.env.MARQUE_BASE_URL;
if (!baseUrl) throw new Error("MARQUE_BASE_URL is not set");
const phone = process.env.MARQUE_TEST_PHONE ?? "+996555000001";
const code = process.env.MARQUE_TEST_CODE ?? "123456";

const client = createClient<paths>({ baseUrl });

// The bearer token of the signed-in shopper, sent on every request once set.
let token: string | undefined;
const bearer: Middleware = {
  onRequest({ request }) {
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};
client.use(bearer);

/** The body of a successful answer, or exit naming the step and what came back. */
function expect<T>(step: string, answer: { data?: T; error?: unknown; response: Response }): T {
  if (answer.data === undefined) {
    console.error(`signin.ts: ${step}: ${answer.response.status}`, answer.error);
    process.exit(1);
  }
  console.log(`signin.ts: ${step}: ok`);
  return answer.data;
}

const sent = expect(
  "send-code",
  await client.POST("/api/v1/auth/send-code", { body: { phone_number: phone } }),
);
const verified = expect(
  "verify-code",
  await client.POST("/api/v1/auth/verify-code", {
    body: { phone_number: phone, verification_code: code, challenge_id: sent.challenge_id },
  }),
);
token = verified.access_token;
const profile = expect("profile", await client.GET("/api/v1/auth/profile"));
if (profile.phone_number !== phone) {
  console.error(`signin.ts: profile: phone ${profile.phone_number}, expected ${phone}`);
  process.exit(1);
}
const refreshed = expect(
  "refresh",
  await client.POST("/api/v1/auth/refresh", { body: { refresh_token: verified.refresh_token } }),
);
token = refreshed.access_token;
const ended = expect(
  "logout",
  await client.POST("/api/v1/auth/logout", { params: { query: { scope: "local" } } }),
);
if (ended.sessions_ended !== 1) {
  console.error(`signin.ts: logout ended ${ended.sessions_ended} sessions, expected 1`);
  process.exit(1);
}
const after = await client.GET("/api/v1/auth/profile");
if (after.response.status !== 401) {
  console.error(`signin.ts: profile after logout: ${after.response.status}, expected 401`);
  process.exit(1);
}
console.log("signin.ts: profile after logout: 401 as expected");
