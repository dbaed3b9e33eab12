/**
 * A tenant's budget: a total set by an admin, usage recorded by workers, and
 * the hints when usage nears or passes the total. Pure.
 *
 * Amounts are kept as whole micro-units (1e-6 of the currency) so that sums of
 * many small usages stay exact; the API speaks in currency units (Float).
 */
import { badInput } from './errors.js';

/** A tenant's budget. */
export interface Budget {
  /** The budget in micro-units; null until an admin sets one. */
  totalMicros: number | null;
  /** Usage recorded so far, micro-units. */
  usedMicros: number;
  /** ISO 4217 code (e.g. EUR); null until set. */
  currency: string | null;
  /** Grows with every change, so readers can order views. */
  version: number;
}

/** What clients see of a budget, in currency units. */
export interface BudgetView {
  budgetTotal: number | null;
  budgetUsed: number;
  /** total - used; negative when over budget; null without a total. */
  budgetRemaining: number | null;
  currency: string | null;
  /** used / total × 100; null without a total (or with a total of 0). */
  percentUsed: number | null;
}

/** Kinds of budget hint. */
export type BudgetHint = 'NEAR_BUDGET' | 'OVER_BUDGET';

/** Usage at or above this share of the total is "near budget". */
export const NEAR_BUDGET_FRACTION = 0.9;
/** Largest budget or single usage accepted, currency units. */
export const MAX_AMOUNT = 1e12;

export const emptyBudget = (): Budget => ({ totalMicros: null, usedMicros: 0, currency: null, version: 0 });

const toMicros = (amount: number) => Math.round(amount * 1e6);
const fromMicros = (micros: number) => micros / 1e6;

/** The view of a budget. */
export function viewBudget(b: Budget): BudgetView {
  const total = b.totalMicros;
  return {
    budgetTotal: total === null ? null : fromMicros(total),
    budgetUsed: fromMicros(b.usedMicros),
    budgetRemaining: total === null ? null : fromMicros(total - b.usedMicros),
    currency: b.currency,
    percentUsed: total === null || total === 0 ? null : (b.usedMicros / total) * 100,
  };
}

/** The hints a change from `before` to `after` crosses into (near, then over). */
export function budgetCrossings(before: Budget, after: Budget): BudgetHint[] {
  const level = (b: Budget) => {
    if (b.totalMicros === null) return 0;
    if (b.usedMicros > b.totalMicros) return 2;
    return b.usedMicros >= b.totalMicros * NEAR_BUDGET_FRACTION ? 1 : 0;
  };
  const from = level(before);
  const to = level(after);
  const hints: BudgetHint[] = [];
  if (from < 1 && to >= 1 && to < 2) hints.push('NEAR_BUDGET');
  if (from < 2 && to === 2) hints.push('OVER_BUDGET');
  return hints;
}

/**
 * Sets the total and currency.
 * @throws DomainError BAD_USER_INPUT for a negative, non-finite or huge total, or a currency that is not three capital letters.
 */
export function setBudget(b: Budget, total: number, currency: string): { budget: Budget; hints: BudgetHint[] } {
  if (!Number.isFinite(total) || total < 0 || total > MAX_AMOUNT) throw badInput('total', `total must be from 0 to ${MAX_AMOUNT}`);
  if (!/^[A-Z]{3}$/.test(currency)) throw badInput('currency', 'currency must be an ISO 4217 code such as EUR or USD');
  const budget = { ...b, totalMicros: toMicros(total), currency, version: b.version + 1 };
  return { budget, hints: budgetCrossings(b, budget) };
}

/**
 * Adds usage. Going over budget is allowed: it yields an OVER_BUDGET hint, nothing more.
 * @throws DomainError BAD_USER_INPUT when `amount` is not a positive finite number up to {@link MAX_AMOUNT}.
 */
export function recordUsage(b: Budget, amount: number): { budget: Budget; hints: BudgetHint[] } {
  if (!Number.isFinite(amount) || amount <= 0 || amount > MAX_AMOUNT) throw badInput('amount', `amount must be a positive number up to ${MAX_AMOUNT}`);
  const budget = { ...b, usedMicros: b.usedMicros + toMicros(amount), version: b.version + 1 };
  return { budget, hints: budgetCrossings(b, budget) };
}
