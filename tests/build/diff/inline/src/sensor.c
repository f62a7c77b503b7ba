/* Sensor readings brought into range by one small inline helper. */
static inline int clamp(int v, int lo, int hi)
{
        if (v < lo)
                return lo;
        if (v >= hi)
                return hi - 1;
        return v;
}

int fix_temp(int t)
{
        return clamp(t, -40, 125);
}

int fix_pct(int p)
{
        return clamp(p, 0, 100);
}

int raw_avg(int a, int b)
{
        return (a + b) / 2;
}
