/* A raw reading (0..1000) as a level 0..9 and as a percentage. */
int level(int raw)
{
        return raw / 10;
}

int percent(int raw)
{
        return (raw + 5) / 10;
}
