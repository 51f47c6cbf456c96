import 'reflect-metadata';
import { config as loadDotenv } from 'dotenv';
import { AppConfig } from './config/app-config';
import { ConfigError, loadConfig, redactSecrets, refuseWeakSecrets } from './config/env';
import { startApp, stopOnSignals } from './bootstrap';

loadDotenv({ quiet: true });

/** Known once the configuration is valid, so a start-up failure can be printed without its secrets. */
let started: AppConfig | undefined;

/** Production entry (`npm run start:prod`): everything comes from the environment, nothing is embedded. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
    refuseWeakSecrets(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  started = config;
  const { app, url } = await startApp(config);
  stopOnSignals(app);
  console.log(url ? `Settle (${config.role}) listening on ${url}` : `Settle (${config.role}) started`);
}

main().catch((err) => {
  const message = `Settle failed to start: ${(err as Error).message}`;
  console.error(started ? redactSecrets(message, started) : message);
  process.exit(1);
});
