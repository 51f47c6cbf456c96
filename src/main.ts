import 'reflect-metadata';
import { config as loadDotenv } from 'dotenv';
import { ConfigError, loadConfig } from './config/env';
import { startApp, stopOnSignals } from './bootstrap';

loadDotenv({ quiet: true });

/** Production entry (`npm run start:prod`): everything comes from the environment, nothing is embedded. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const { app, url } = await startApp(config);
  stopOnSignals(app);
  console.log(url ? `Settle (${config.role}) listening on ${url}` : `Settle (${config.role}) started`);
}

main().catch((err) => {
  console.error(`Settle failed to start: ${(err as Error).message}`);
  process.exit(1);
});
