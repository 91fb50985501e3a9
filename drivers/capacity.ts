// Capacity arithmetic shared by thin-provisioned pools. cinder rounds GiB figures to two places and
// reports max_over_subscription_ratio as a string; we do the same so the scheduler's filters see
// exactly the numbers they would from cinder's own drivers.

const GiB = 1024 ** 3;

export function bytesToGiB(bytes: number): number {
  return Math.round((bytes / GiB) * 100) / 100;
}

export function formatOverSubscriptionRatio(ratio: number | 'auto'): string {
  if (ratio === 'auto') return 'auto';
  // Python's str(float): 20.0 → "20.0", 1.5 → "1.5"
  return Number.isInteger(ratio) ? ratio.toFixed(1) : String(ratio);
}
