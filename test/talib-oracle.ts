/**
 * Every stored indicator series by TA-Lib itself (the dev-only `talib` package, TA-Lib 0.6's C
 * code) over the given bars: the oracle the indicator tests hold our TypeScript to. NaN where
 * TA-Lib gives no value (the look-back).
 */
import type TalibModule from 'talib';

type Talib = typeof TalibModule;

/** Every stored series by TA-Lib itself (the dev-only `talib` package) over the given bars. */
export async function talibIndicators(b: { high: number[]; low: number[]; close: number[] }) {
  const talib = ((await import('talib')) as unknown as { default: Talib }).default;
  const n = b.close.length;
  const run = (name: string, inputs: Record<string, unknown>, output: string): Float64Array => {
    const out = new Float64Array(n).fill(NaN);
    const res = talib.execute({ name, startIdx: 0, endIdx: n - 1, ...inputs });
    if ('error' in res) throw new Error(`talib ${name}: ${String((res as { error: unknown }).error)}`);
    for (let j = 0; j < res.nbElement; j++) out[res.begIndex + j] = res.result[output]![j]!;
    return out;
  };
  const c = { inReal: b.close };
  const hlc = { high: b.high, low: b.low, close: b.close };
  const m = { ...c, optInFastPeriod: 12, optInSlowPeriod: 26, optInSignalPeriod: 9 };
  const bb = { ...c, optInTimePeriod: 20, optInNbDevUp: 2, optInNbDevDn: 2, optInMAType: 0 };
  const st = {
    ...hlc,
    optInFastK_Period: 14,
    optInSlowK_Period: 3,
    optInSlowK_MAType: 0,
    optInSlowD_Period: 3,
    optInSlowD_MAType: 0,
  };
  return {
    sma_20: run('SMA', { ...c, optInTimePeriod: 20 }, 'outReal'),
    sma_50: run('SMA', { ...c, optInTimePeriod: 50 }, 'outReal'),
    sma_200: run('SMA', { ...c, optInTimePeriod: 200 }, 'outReal'),
    ema_12: run('EMA', { ...c, optInTimePeriod: 12 }, 'outReal'),
    ema_26: run('EMA', { ...c, optInTimePeriod: 26 }, 'outReal'),
    rsi_14: run('RSI', { ...c, optInTimePeriod: 14 }, 'outReal'),
    macd: run('MACD', m, 'outMACD'),
    macd_signal: run('MACD', m, 'outMACDSignal'),
    macd_hist: run('MACD', m, 'outMACDHist'),
    bb_upper: run('BBANDS', bb, 'outRealUpperBand'),
    bb_middle: run('BBANDS', bb, 'outRealMiddleBand'),
    bb_lower: run('BBANDS', bb, 'outRealLowerBand'),
    atr_14: run('ATR', { ...hlc, optInTimePeriod: 14 }, 'outReal'),
    stoch_k: run('STOCH', st, 'outSlowK'),
    stoch_d: run('STOCH', st, 'outSlowD'),
    stddev_20: run('STDDEV', { ...c, optInTimePeriod: 20, optInNbDev: 1 }, 'outReal'),
  } as Record<string, Float64Array>;
}
