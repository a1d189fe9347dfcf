def loop_with_break(x, limit):
    # total = 0.0
    total = 0.0
    # for v in x:
    did_break = False
    t = length(x)
    for i in range(0, t, 1):
        t_1 = logical_not(did_break)
        if t_1:
            v = getitem(x, i)
            # if total > limit:
            t_3 = greater(total, limit)
            if t_3:
                # break
                did_break = True
            # total += np.sin(v) * v
            t_4 = logical_not(did_break)
            if t_4:
                t_5 = sin(v)
                t_6 = multiply(t_5, v)
                total = add(total, t_6)
    # return total
    return total
