/** Nothing global to tear down: every suite drops the database it created. */
export default async function globalTeardown(): Promise<void> {}
