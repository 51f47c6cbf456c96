import { MockPsp, mockPspOptionsFromEnv } from './index';

/** `npm run mock-psp`: the mock PSP on its own, configured by MOCK_PSP_* variables. */
async function main(): Promise<void> {
  let options;
  try {
    options = mockPspOptionsFromEnv(process.env);
  } catch (err) {
    console.error(`[mock-psp] ${(err as Error).message}`);
    process.exit(1);
  }
  const mock = await MockPsp.start(options);
  console.log(`[mock-psp] Stripe-compatible API on ${mock.url} (use any sk_test_… key)`);
  console.log(`[mock-psp] webhooks: ${options.forwardTo ?? 'not forwarded (set MOCK_PSP_FORWARD_TO)'}, signed with ${mock.webhookSecret}`);
  const stop = () => {
    void mock.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  console.error(`[mock-psp] failed to start: ${(err as Error).message}`);
  process.exit(1);
});
