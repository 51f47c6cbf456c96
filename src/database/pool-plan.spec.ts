import { INTAKE_POOL_SIZE, MIN_MAIN_POOL_SIZE, planPools } from './database';

describe('planPools: how DATABASE_POOL_SIZE is split between the main pool and the intake', () => {
  it('gives the intake its own connections when the main pool keeps enough for the reconciler beside them', () => {
    expect(planPools(20)).toEqual({ main: 20 - INTAKE_POOL_SIZE, intake: 'own' });
    expect(planPools(MIN_MAIN_POOL_SIZE + INTAKE_POOL_SIZE)).toEqual({ main: MIN_MAIN_POOL_SIZE, intake: 'own' });
  });

  it('shares one pool of the whole size when it is smaller (the embedded database gets 2), never a main pool below 2', () => {
    expect(planPools(2)).toEqual({ main: 2, intake: 'shared' });
    expect(planPools(3)).toEqual({ main: 3, intake: 'shared' });
  });

  it('never opens more connections than DATABASE_POOL_SIZE', () => {
    for (let size = 2; size <= 30; size++) {
      const plan = planPools(size);
      expect(plan.main + (plan.intake === 'own' ? INTAKE_POOL_SIZE : 0)).toBe(size);
      expect(plan.main).toBeGreaterThanOrEqual(MIN_MAIN_POOL_SIZE);
    }
  });
});
