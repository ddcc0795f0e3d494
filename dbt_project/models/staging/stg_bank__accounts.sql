with

source as (

    select * from {{ source('bank', 'accounts') }}

),

renamed as (

    select

        ----------  ids
        cast(account_id as bigint) as account_id,
        cast(customer_id as bigint) as customer_id,

        ---------- text
        lower(trim(account_type)) as account_type,
        lower(trim(status)) as status,

        ---------- numerics
        cast(balance as double) as balance,

        ---------- dates
        cast(opened_at as date) as opened_at

    from source

),

final as (

    select * from renamed

)

select * from final
